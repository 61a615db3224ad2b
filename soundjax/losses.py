"""Per-example logits and loss functions that attacks and attributions close over.

A `LogitsFn` is `(params, x) -> logits` and a `LossFn` is `(params, x, y) -> scalar`, both for ONE
unbatched example. Transforms differentiate them with respect to `x` and callers batch them with
`jax.vmap`. `params` is whatever the model's `apply` takes (for Linen, the variables dict with
`params` and, where present, `batch_stats`).
"""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

LogitsFn = Callable[[Any, jax.Array], jax.Array]
LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]
FrontEnd = Callable[[jax.Array], jax.Array]


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
