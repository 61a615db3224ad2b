"""Parts of iterative attacks: the loop, initialisations, step normalisers and projections.

An attack perturbs ONE unbatched input `x` by a `delta` of the same shape. The iterative loop
ascends a `LossFn` with any `optax.GradientTransformation` as the step rule, as an optax
optimiser descends a training loss:

  delta = project(init(x, key), x)
  repeat num_steps:  delta = project(delta + step(grad_delta loss(params, x + delta, y)), x)

Named attacks (`gradient.py`) are single expressions over these parts; users recombine them.
All parts are pure and safe on zero gradients and zero-power signals (no NaN).
"""

import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax

from soundjax import checks
from soundjax.types import Attack, Bounds, Init, LossFn, Projection

NORMS = ("linf", "l2")


# --- numerically safe sizes ---

def _safe_ratio(num: jax.Array, den: jax.Array) -> jax.Array:
  """`num / den`, and 0 where `den` is 0 (so a zero vector keeps zero size)."""
  positive = den > 0
  return jnp.where(positive, num / jnp.where(positive, den, 1), 0)


def l2_norm(v: jax.Array) -> jax.Array:
  """Euclidean norm that neither underflows nor overflows: scale by max |v| first."""
  peak = jnp.max(jnp.abs(v))
  return peak * jnp.sqrt(jnp.sum(jnp.square(_safe_ratio(v, peak))))


def rms(v: jax.Array) -> jax.Array:
  """Root mean square, the amplitude whose square is the signal power."""
  return l2_norm(v) / math.sqrt(v.size)


def snr_amplitude(x: jax.Array, snr_db: float) -> jax.Array:
  """RMS of a perturbation that sits exactly `snr_db` below the power of `x`."""
  return rms(x) * 10.0 ** (-snr_db / 20.0)


def budget_radius(x: jax.Array, *, norm: str, eps: Any, snr_db: Any = None) -> jax.Array:
  """The amplitude of the budget `(eps, snr_db)` around `x`, in units of `norm`.

  `budget` keeps `delta` in the `norm` ball of radius `eps` and, with `snr_db`, scales it down
  until `RMS(delta) <= snr_amplitude(x, snr_db)`. A sign step moves every sample by the same
  amount `a`, so its RMS is `a`: in Linf units the SNR floor's amplitude is that RMS itself; in L2
  units it is the RMS times `sqrt(x.size)`. The radius is the smaller of the ball's and the
  floor's. `eps` and `snr_db` may be traced.
  """
  eps = jnp.asarray(eps, x.dtype)
  if snr_db is None:
    return eps
  floor = snr_amplitude(x, snr_db).astype(x.dtype)
  return jnp.minimum(eps, floor * math.sqrt(x.size) if norm == "l2" else floor)


# --- the loop ---

# XLA:CPU runs a convolution's input gradient 3-5x slower in a program holding a loop (even one
# of a single trip, which XLA removes later) than in straight-line code (scripts/bench_attacks.py:
# PGD-10 on a VGG, 165 vs 34 ms per example). Compile time grows with every traced step (a small
# VGG here: 7 s for 10 steps, 21 s for 40, 63 s for 100, against 3 s looped), so on CPU up to this
# many steps are traced straight and longer attacks keep the `lax.fori_loop`. Accelerators always
# loop: they gain nothing from the straight trace and would only compile longer.
MAX_UNROLLED_STEPS = 20


def iterative(loss_fn: LossFn, *, init: Init, step: optax.GradientTransformation,
              project: Projection, num_steps: int, unroll: Optional[bool] = None) -> Attack:
  """Builds an attack that ascends `loss_fn` with an optax step rule under a projection.

  The steps run in a `lax.fori_loop`, except on CPU, where up to `MAX_UNROLLED_STEPS` of them are
  traced as straight-line code (XLA:CPU runs convolution input gradients 3-5x faster outside
  loops). Both forms compute the same values. The choice is made from `jax.default_backend()`
  each time the attack is traced: a jitted attack is traced once per compile, and compiled for
  the default backend unless told otherwise, so the choice fits the code XLA builds. Work sent
  to another platform (a `jax.default_device` or inputs committed to the CPU of a GPU host) gets
  the default platform's form, which is slower there but never different; `unroll=True` or
  `unroll=False` forces one form.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    init: `(x, key) -> delta`, the starting perturbation (projected before the first step).
    step: transform of the input gradient into an update; `delta <- delta + update`.
    project: `(delta, x) -> delta` applied after every step (budget, then box).
    num_steps: number of gradient steps, >= 1.
    unroll: True traces the steps as straight-line code, False as a `lax.fori_loop`; None
      (default) decides at trace time: straight on CPU up to `MAX_UNROLLED_STEPS`, else loop.

  Returns:
    `attack(params, x, y, key) -> x_adv` for one unbatched example.

  Example:
    >>> attack = iterative(loss_fn, init=init_zeros(),
    ...                    step=optax.chain(optax.scale_by_sign(), optax.scale(0.01)),
    ...                    project=chain_projections(project_snr(30.0), project_bounds(-1, 1)),
    ...                    num_steps=10)
  """
  checks.integer("num_steps", num_steps)

  def attack(params, x, y, key):
    grad_fn = jax.grad(lambda delta: loss_fn(params, x + delta, y))

    def body(_, carry):
      delta, state = carry
      updates, state = step.update(grad_fn(delta), state, delta)
      return project(delta + updates, x), state

    delta = project(init(x, key), x)
    return x + run_steps(body, (delta, step.init(delta)), num_steps, unroll)[0]

  return attack


def run_steps(body: Callable[[Any, Any], Any], carry: Any, num_steps: int,
              unroll: Optional[bool] = None) -> Any:
  """`carry` after `num_steps` calls `carry = body(i, carry)`: straight-line code or a
  `lax.fori_loop`, as `unroll` says (None: straight on CPU up to `MAX_UNROLLED_STEPS`, decided
  at trace time so that the backend is the one this trace compiles for). Every iterative attack's
  loop."""
  straight = unroll if unroll is not None else (
      jax.default_backend() == "cpu" and num_steps <= MAX_UNROLLED_STEPS)
  if not straight:
    return jax.lax.fori_loop(0, num_steps, body, carry)
  for i in range(num_steps):
    carry = body(i, carry)
  return carry


def best_of(attack: Attack, loss_fn: LossFn, *, num_restarts: int) -> Attack:
  """Runs `attack` from `num_restarts` keys (vmapped) and keeps the result of highest loss."""
  checks.integer("num_restarts", num_restarts)
  if num_restarts == 1:
    return attack

  def restarted(params, x, y, key):
    keys = jax.random.split(key, num_restarts)
    candidates = jax.vmap(attack, in_axes=(None, None, None, 0))(params, x, y, keys)
    losses = jax.vmap(loss_fn, in_axes=(None, 0, None))(params, candidates, y)
    return candidates[jnp.argmax(losses)]

  return restarted


# --- initialisations: (x, key) -> delta ---

def init_zeros() -> Init:
  """Starts at the clean input."""
  return lambda x, key: jnp.zeros_like(x)


def init_uniform_linf(eps: float) -> Init:
  """Uniform in the Linf ball of radius `eps`."""
  checks.nonnegative_or_traced("eps", eps)
  return lambda x, key: jax.random.uniform(key, x.shape, x.dtype, -eps, eps)


def init_uniform_l2(eps: float) -> Init:
  """Uniform in the L2 ball of radius `eps` (direction Gaussian, radius eps * u^(1/n))."""
  checks.nonnegative_or_traced("eps", eps)

  def init(x, key):
    direction_key, radius_key = jax.random.split(key)
    direction = jax.random.normal(direction_key, x.shape, x.dtype)
    radius = eps * jax.random.uniform(radius_key, (), x.dtype) ** (1.0 / x.size)
    return direction * _safe_ratio(radius, l2_norm(direction))

  return init


def init_uniform(norm: str, eps: float) -> Init:
  """Uniform in the `norm` ball ("linf" or "l2") of radius `eps`."""
  checks.one_of("norm", norm, NORMS)
  return init_uniform_linf(eps) if norm == "linf" else init_uniform_l2(eps)


def init_noise_snr(snr_db: float) -> Init:
  """White Gaussian noise scaled to exactly `snr_db` below the power of `x`."""
  checks.finite_or_traced("snr_db", snr_db)
  to_snr = project_snr_sphere(snr_db)
  return lambda x, key: to_snr(jax.random.normal(key, x.shape, x.dtype), x)


# --- step normalisers: optax transforms of the input gradient ---

def _normalize_by(size: Callable[[jax.Array], jax.Array]) -> optax.GradientTransformation:
  def update(updates, state, params=None):
    del params
    return _safe_ratio(updates, size(updates)), state

  return optax.GradientTransformation(optax.init_empty_state, update)


def normalize_l1() -> optax.GradientTransformation:
  """Divides the gradient by its L1 norm (MI-FGSM's accumulation); zero stays zero."""
  return _normalize_by(lambda g: jnp.sum(jnp.abs(g)))


def normalize_l2() -> optax.GradientTransformation:
  """Divides the gradient by its L2 norm (steepest ascent in L2); zero stays zero."""
  return _normalize_by(l2_norm)


def normalize(norm: str) -> optax.GradientTransformation:
  """Steepest-ascent direction of unit size for `norm`: sign for "linf", unit L2 for "l2"."""
  checks.one_of("norm", norm, NORMS)
  return optax.scale_by_sign() if norm == "linf" else normalize_l2()


# --- projections: (delta, x) -> delta ---

def project_linf(eps: float) -> Projection:
  """Clips every element of `delta` to [-eps, eps]."""
  checks.nonnegative_or_traced("eps", eps)
  return lambda delta, x: jnp.clip(delta, -eps, eps)


def project_l2(eps: float) -> Projection:
  """Scales `delta` down onto the L2 ball of radius `eps` when it lies outside."""
  checks.nonnegative_or_traced("eps", eps)

  def project(delta, x):
    size = l2_norm(delta)
    return delta * jnp.where(size > eps, _safe_ratio(eps, size), 1)

  return project


def project_ball(norm: str, eps: float) -> Projection:
  """Projection onto the `norm` ball ("linf" or "l2") of radius `eps`."""
  checks.one_of("norm", norm, NORMS)
  return project_linf(eps) if norm == "linf" else project_l2(eps)


def project_snr(snr_db: float) -> Projection:
  """Scales `delta` down so that `10 log10(P_x / P_delta) >= snr_db` (powers are means of squares).

  The budget is relative to the clean signal's power, per example, as the audio attacks paper
  measures perturbations. A silent `x` admits only `delta = 0`. `snr_db` may be a traced scalar
  (an argument of the jitted sweep), so that a sweep over SNRs compiles once.
  """
  checks.finite_or_traced("snr_db", snr_db)

  def project(delta, x):
    limit, size = snr_amplitude(x, snr_db), rms(delta)
    return delta * jnp.where(size > limit, _safe_ratio(limit, size), 1)

  return project


def project_snr_sphere(snr_db: float) -> Projection:
  """Scales a nonzero `delta` to exactly `snr_db` (zero stays zero): the paper's fixed-SNR FGSM."""
  checks.finite_or_traced("snr_db", snr_db)
  return lambda delta, x: delta * _safe_ratio(snr_amplitude(x, snr_db), rms(delta))


def project_bounds(lo: float, hi: float) -> Projection:
  """Keeps `x + delta` in the box [lo, hi] widened to contain `x`: `[min(lo, x), max(hi, x)]`.

  For `x` in the box this is plain clipping. A clean sample outside it (resampled audio
  overshoots +-1) may move towards the box or into it, never further out, and is not pulled in:
  that would add a perturbation as large as the overshoot, outside any budget. The interval
  allowed for each `delta` element always contains 0, so the projection only shrinks `|delta|`
  elementwise and keeps every norm ball and SNR floor met before it. To attack in-box audio,
  clip the clean input first (`jnp.clip(x, lo, hi)`) and take that as the reference.
  """
  checks.bounds((lo, hi))
  return lambda delta, x: jnp.clip(x + delta, jnp.minimum(lo, x), jnp.maximum(hi, x)) - x


def chain_projections(*projections: Projection) -> Projection:
  """Applies projections in order (put norm budgets first and the box last)."""

  def project(delta, x):
    for p in projections:
      delta = p(delta, x)
    return delta

  return project


def with_bounds(project: Projection, bounds: Bounds) -> Projection:
  """`project`, then `project_bounds(*bounds)` unless `bounds` is None.

  The box is widened per element to contain the clean `x` (see `project_bounds`), so it only
  shrinks `delta` elementwise and `project`'s budget still holds afterwards, for any `x`.
  """
  checks.bounds(bounds)
  return project if bounds is None else chain_projections(project, project_bounds(*bounds))


def budget(norm: str, eps: float, bounds: Bounds = None,
           snr_db: Optional[float] = None) -> Projection:
  """The usual constraint set: the `norm` ball, then an optional SNR floor, then the box.

  Shrinking keeps earlier constraints: SNR scaling is by a factor <= 1, and the box, widened to
  contain `x` (`project_bounds`), only shrinks elements, so the result meets all three at once
  for any clean `x`, in the box or not (up to float rounding of `x + delta`; see
  `metrics.perturbation.within_linf`). An out-of-box sample only moves towards the box.
  `eps` and `snr_db` may be traced scalars (arguments of a jitted sweep), as in every attack
  built on them, so that a curve over budgets compiles once.
  """
  ball = project_ball(norm, eps)
  if snr_db is not None:
    ball = chain_projections(ball, project_snr(snr_db))
  return with_bounds(ball, bounds)
