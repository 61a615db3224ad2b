"""Per-example logits and loss functions that attacks and attributions close over.

A `LogitsFn` is `(params, x) -> logits` and a `LossFn` is `(params, x, y) -> scalar`, both for ONE
unbatched example. Transforms differentiate them with respect to `x` and callers batch them with
`jax.vmap`. `params` is whatever the model's `apply` takes (for Linen, the variables dict with
`params` and, where present, `batch_stats`).
"""

import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from soundjax.types import FrontEnd, LogitsFn, LossFn


def model_logits(model: nn.Module, *, frontend: Optional[FrontEnd] = None) -> LogitsFn:
  """Returns the per-example logits of a Linen model in inference mode.

  Args:
    model: a module whose `apply(variables, x_batch, train=False)` returns `[batch, classes]`
      (or `[batch]` for a single-logit binary model).
    frontend: optional per-example transform applied to `x` first, e.g. `frontend.log_mel(...)`,
      so that gradients flow from the model's input back to the waveform.

  Returns:
    `logits_fn(params, x) -> logits` for one unbatched example.

  Example:
    >>> logits_fn = model_logits(model, frontend=log_mel(sample_rate=16000, n_fft=512,
    ...                                                   hop_length=256, n_mels=40))
    >>> loss_fn = softmax_cross_entropy(logits_fn)
  """

  def logits_fn(params, x):
    features = frontend(x) if frontend is not None else x
    return model.apply(params, features[None], train=False)[0]

  return logits_fn


def softmax_cross_entropy_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Cross-entropy of `[..., classes]` logits against integer labels `[...]`."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def sigmoid_cross_entropy_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Binary cross-entropy of single-logit outputs `[..., 1]` against labels `[...]` in {0, 1}."""
  logit = logits[..., 0]
  return optax.sigmoid_binary_cross_entropy(logit, jnp.asarray(y, logit.dtype))


# Config name -> (loss on logits and labels, prediction from logits).
LOGIT_LOSSES = {
    "softmax_cross_entropy": (softmax_cross_entropy_on_logits,
                              lambda logits: jnp.argmax(logits, axis=-1)),
    "sigmoid_binary_cross_entropy": (sigmoid_cross_entropy_on_logits,
                                     lambda logits: (logits[..., 0] > 0).astype(jnp.int32)),
}


def loss_on_logits(name: str):
  """Returns `(loss(logits, y), predict(logits))` for a loss named in a config."""
  if name not in LOGIT_LOSSES:
    raise ValueError(f"Unknown loss {name!r}; known losses: {sorted(LOGIT_LOSSES)}.")
  return LOGIT_LOSSES[name]


def smooth_labels(y: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
  """Integer labels `[...]` as `(1 - smoothing) * one_hot + smoothing / num_classes` `[..., K]`.

  The semantics of `optax.smooth_labels`, applied to the one-hot encoding of `y`.
  """
  return optax.smooth_labels(jax.nn.one_hot(y, num_classes), smoothing)


def _smoothed_softmax_cross_entropy(logits: jax.Array, y: jax.Array, smoothing: float):
  return optax.softmax_cross_entropy(logits, smooth_labels(y, logits.shape[-1], smoothing))


def _smoothed_sigmoid_cross_entropy(logits: jax.Array, y: jax.Array, smoothing: float):
  # A binary label is the one-hot pair (no, yes); the target is its smoothed "yes":
  # y (1 - a) + a / 2.
  return optax.sigmoid_binary_cross_entropy(logits[..., 0], smooth_labels(y, 2, smoothing)[..., 1])


_SMOOTHED_LOSSES = {"softmax_cross_entropy": _smoothed_softmax_cross_entropy,
                    "sigmoid_binary_cross_entropy": _smoothed_sigmoid_cross_entropy}


def smoothed_loss_on_logits(name: str, label_smoothing: float = 0.0):
  """Returns `loss(logits, y)`: the named loss against labels smoothed by `label_smoothing`.

  The training loss. A label `y` becomes `(1 - a) one_hot(y) + a / K` (`optax.smooth_labels`)
  over its K outcomes: the K classes for softmax cross-entropy, and the two outcomes of a binary
  label for sigmoid cross-entropy, whose target is then `y (1 - a) + a / 2`. Attacks and
  attributions differentiate the plain loss (`per_example_loss`), whatever the training used.

  Args:
    name: a loss name of `LOGIT_LOSSES`.
    label_smoothing: `a` in [0, 1); 0 gives exactly the plain loss of `loss_on_logits`.

  Returns:
    `loss(logits, y) -> [...]` for logits `[..., K]` and integer labels `[...]`.

  Example:
    >>> loss = smoothed_loss_on_logits("sigmoid_binary_cross_entropy", 0.04)  # 0.02 + 0.96 y
  """
  plain, _ = loss_on_logits(name)
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
  if label_smoothing == 0.0:
    return plain
  return functools.partial(_SMOOTHED_LOSSES[name], smoothing=label_smoothing)


def per_example_loss(logits_fn: LogitsFn, name: str) -> LossFn:
  """Returns `loss_fn(params, x, y)` applying the named loss to `logits_fn(params, x)`."""
  loss, _ = loss_on_logits(name)

  def loss_fn(params, x, y):
    return loss(logits_fn(params, x), y)

  return loss_fn


def softmax_cross_entropy(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)`: cross-entropy of the logits against integer label `y`."""
  return per_example_loss(logits_fn, "softmax_cross_entropy")


def sigmoid_binary_cross_entropy(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)` for a single-logit binary model and a label `y` in {0, 1}."""
  return per_example_loss(logits_fn, "sigmoid_binary_cross_entropy")
