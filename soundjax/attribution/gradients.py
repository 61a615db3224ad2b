"""Loss-gradient attributions: per-example pure functions `(params, x, y, key) -> a`.

Every method differentiates a `LossFn` `(params, x, y) -> scalar` with respect to the input `x` at
the true label `y`, as in "Anomalous behaviour in loss-gradient based interpretability methods",
and returns an `Attribution` (both aliases are documented in `soundjax.types`). A user who wants
the attribution of a class score instead passes a function returning that score. Callers batch
with `jax.jit(jax.vmap(attribution, in_axes=(None, 0, 0, 0)))`; wrap that in
`soundjax.checks.checked` to raise on NaN inputs or out-of-range labels instead of returning NaN.
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from soundjax import checks
from soundjax.types import Attribution, LossFn

# Quadrature rules on [0, 1] for the integrated-gradients path integral: name -> (alphas, weights).
# Both are exact for linear paths and O(1/n^2) for smooth ones; the trapezoid rule evaluates the
# endpoints, so it needs n + 1 gradients, the midpoint rule n.
_PATH_RULES = {
    "riemann_trapezoid": lambda n: (np.linspace(0.0, 1.0, n + 1),
                                    np.concatenate([[0.5], np.ones(n - 1), [0.5]]) / n),
    "riemann_midpoint": lambda n: ((np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)),
}


def map_in_batches(fn: Callable, xs: Any, batch_size: Optional[int]) -> Any:
  """`jax.vmap(fn)(xs)` when `batch_size` is None, else `lax.map` in chunks to cap memory."""
  if batch_size is None:
    return jax.vmap(fn)(xs)
  return jax.lax.map(fn, xs, batch_size=batch_size)


def gradient(loss_fn: LossFn) -> Attribution:
  """Returns the signed loss gradient with respect to the input (the paper's `grad_orig`).

  Args:
    loss_fn: `(params, x, y) -> scalar` for one example (a `soundjax.types.LossFn`).

  Returns:
    `attribution(params, x, y, key) -> dL/dx` (an `Attribution`; the key is unused).

  Example:
    >>> attribution = gradient(softmax_cross_entropy(model_logits(model)))
    >>> a = jax.jit(jax.vmap(attribution, in_axes=(None, 0, 0, 0)))(params, xs, ys, keys)
  """
  grad_fn = jax.grad(loss_fn, argnums=1)

  def attribution(params, x, y, key):
    del key  # Deterministic method; the key keeps the common signature.
    return grad_fn(params, x, y)

  return attribution


def abs_gradient(loss_fn: LossFn) -> Attribution:
  """Returns `|dL/dx|` (the paper's `abs_grad`); see `gradient`."""
  grad_fn = gradient(loss_fn)
  return lambda params, x, y, key: jnp.abs(grad_fn(params, x, y, key))


def grad_x_input(loss_fn: LossFn) -> Attribution:
  """Returns `dL/dx * x` (the paper's `grad_inp`); see `gradient`."""
  grad_fn = gradient(loss_fn)
  return lambda params, x, y, key: grad_fn(params, x, y, key) * x


def integrated_gradients(loss_fn: LossFn, *, baseline: ArrayLike = 0.0, num_steps: int = 64,
                         method: str = "riemann_trapezoid",
                         batch_size: Optional[int] = None) -> Attribution:
  """Returns integrated gradients of the loss along the straight path from `baseline` to `x`.

  `a = (x - baseline) * integral_0^1 dL/dx(baseline + alpha (x - baseline)) d alpha`, so that
  `sum(a) ~= L(x) - L(baseline)` (completeness). All path points are evaluated with one `vmap`,
  or in chunks of `batch_size` with `lax.map` when memory is tight.

  Waveforms through a log front end: do not use a silent baseline. On the path from silence,
  `alpha x` has the log-mel `log_mel(x) + 20 log10(alpha)` dB, clamped by `log(max(power, amin))`
  near alpha = 0, where it is flat: the gradient at the baseline is exactly zero, yet the loss
  changes most there (with log(alpha)), inside the quadrature's first step. The sum then misses
  much of `L(x) - L(0)`, and more steps help only slowly (tests/attribution/
  test_completeness.py, a linear model of log-mels: sum -1.38 against L(x) - L(0) = -2.57 at 64
  steps, -1.82 at 256). Instead attribute the model's input, the log-mel: the loss WITHOUT the
  front end, `x = log_mel(waveform)` and a baseline such as the training set's mean or minimum
  log-mel (completeness to 0.01 % there at 64 steps). On the waveform, a baseline of noise about
  20 dB below the clip also works (0.2 % at 64 steps); the nearer silence, the more steps it
  needs. Check `sum(a)` against `L(x) - L(baseline)` for your own model.

  Args:
    loss_fn: `(params, x, y) -> scalar` for one example (a `soundjax.types.LossFn`).
    baseline: scalar or array broadcastable to `x` (e.g. the dataset mean).
    num_steps: number of quadrature intervals along the path.
    method: `"riemann_trapezoid"` (n + 1 gradients, endpoints included) or `"riemann_midpoint"`.
    batch_size: path points per chunk; None evaluates all at once.

  Returns:
    `attribution(params, x, y, key) -> a` (a `soundjax.types.Attribution`; the key is unused).

  Raises:
    ValueError: `num_steps` or `batch_size` below 1, or an unknown `method`.

  Example:
    >>> mel_loss = softmax_cross_entropy(model_logits(model))  # on log-mels, no front end
    >>> features = jax.vmap(log_mel)(train_waveforms)
    >>> ig = integrated_gradients(mel_loss, baseline=features.mean(axis=0), num_steps=64)
    >>> a = ig(variables, log_mel(waveform), label, key)  # sum(a) ~= L(x) - L(mean)
  """
  checks.integer("num_steps", num_steps)
  checks.optional_integer("batch_size", batch_size)
  checks.one_of("method", method, _PATH_RULES)
  alphas, weights = _PATH_RULES[method](num_steps)
  grad_fn = jax.grad(loss_fn, argnums=1)

  def attribution(params, x, y, key):
    del key  # Deterministic method.
    start = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
    path = x - start
    grad_at = lambda alpha: grad_fn(params, start + alpha * path, y)
    grads = map_in_batches(grad_at, jnp.asarray(alphas, x.dtype), batch_size)
    return path * jnp.tensordot(jnp.asarray(weights, x.dtype), grads, axes=1)

  return attribution


def smoothgrad(attribution_fn: Attribution, *, stddev: float, num_samples: int,
               batch_size: Optional[int] = None) -> Attribution:
  """Returns SmoothGrad: the mean of `attribution_fn` over Gaussian-noised copies of the input.

  Each sample draws its noise and its inner attribution key from its own split of `key`, so any
  attribution (including keyed ones) can be wrapped and results are reproducible.

  Args:
    attribution_fn: the attribution to smooth, `(params, x, y, key) -> a`.
    stddev: standard deviation of the noise, in the units of `x` (z-normalised inputs: ~0.1-0.2).
    num_samples: number of noisy copies.
    batch_size: copies per chunk; None evaluates all at once.

  Returns:
    `attribution(params, x, y, key) -> a`.

  Example:
    >>> attribution = smoothgrad(gradient(loss_fn), stddev=0.15, num_samples=32)
  """
  checks.nonnegative("stddev", stddev)
  checks.integer("num_samples", num_samples)
  checks.optional_integer("batch_size", batch_size)

  def attribution(params, x, y, key):
    def sample(sample_key):
      noise_key, inner_key = jax.random.split(sample_key)
      noisy = x + stddev * jax.random.normal(noise_key, x.shape, x.dtype)
      return attribution_fn(params, noisy, y, inner_key)

    samples = map_in_batches(sample, jax.random.split(key, num_samples), batch_size)
    return jnp.mean(samples, axis=0)

  return attribution


def random_attribution() -> Attribution:
  """Returns the control: uniform noise in [0, 1) of `x`'s shape, drawn from `key`.

  Example:
    >>> attribution = random_attribution()
  """

  def attribution(params, x, y, key):
    del params, y  # A control that ignores the model.
    return jax.random.uniform(key, x.shape, x.dtype)

  return attribution


# Method name (the config's and the paper's) -> factory of `(loss_fn, **hyper_parameters)`.
METHODS = {
    "abs_gradient": abs_gradient,
    "gradient": gradient,
    "grad_x_input": grad_x_input,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": lambda loss_fn, **hyper: smoothgrad(gradient(loss_fn), **hyper),
    "random": lambda loss_fn: random_attribution(),
}


def method(name: str, loss_fn: LossFn, **hyper_parameters: Any) -> Attribution:
  """Builds an attribution method from its name.

  Args:
    name: one of `METHODS`: "abs_gradient", "gradient", "grad_x_input", "integrated_gradients"
      (takes `baseline`, `num_steps`, ...), "smoothgrad" (SmoothGrad of the signed gradient; takes
      `stddev`, `num_samples`, ...) or "random" (ignores `loss_fn`).
    loss_fn: `(params, x, y) -> scalar` for one example.
    **hyper_parameters: the factory's keyword arguments.

  Returns:
    `attribution(params, x, y, key) -> a`.

  Example:
    >>> ig = method("integrated_gradients", loss_fn, baseline=0.0, num_steps=32)
  """
  checks.one_of("attribution method", name, METHODS)
  return METHODS[name](loss_fn, **hyper_parameters)

