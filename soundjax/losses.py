"""Per-example logits and loss functions that attacks and attributions close over.

A `LogitsFn` is `(params, x) -> logits` and a `LossFn` is `(params, x, y) -> scalar`, both for ONE
unbatched example (the aliases of `soundjax.types`). Transforms differentiate them with respect to
`x` and callers batch them with `jax.vmap`. `params` is whatever the model's `apply` takes (for
Linen, the variables dict with `params` and, where present, `batch_stats`).

Labels are integer class indices: one scalar per example for a `LossFn`, `logits.shape[:-1]` for
the `*_on_logits` batch losses. A float, one-hot or misshapen `y` raises `TypeError`/`ValueError`
when the loss is traced. A label outside `[0, classes)` cannot be seen then: the loss (and its
gradient) is NaN, never the loss of another class, and `soundjax.checks.checked(fn)` raises on it.
The multi-label loss of the sound event detectors instead takes targets in [0, 1] of the logits'
own shape (`[frames, classes]` per example).
"""

import functools
import inspect
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from soundjax import checks
from soundjax.types import FrontEnd, LogitsFn, LossFn


def _takes_train(model: nn.Module) -> bool:
  """Whether the module's `__call__` accepts a `train` keyword (or any `**kwargs`)."""
  try:
    parameters = inspect.signature(type(model).__call__).parameters.values()
  except (TypeError, ValueError):  # No signature to read: assume the soundjax convention.
    return True
  return any(p.name == "train" and p.kind != p.POSITIONAL_ONLY or p.kind == p.VAR_KEYWORD
             for p in parameters)


def model_logits(model: nn.Module, *, frontend: Optional[FrontEnd] = None) -> LogitsFn:
  """Returns the per-example logits (a `soundjax.types.LogitsFn`) of a Linen model.

  The model runs on a batch of one, in inference mode when it has one: `train=False` is passed
  only if its `__call__` takes a `train` keyword (read once, here), so any module whose
  `apply(variables, x_batch)` returns `[batch, classes]` logits works.

  Args:
    model: a module whose `apply(variables, x_batch[, train=False])` returns `[batch, classes]`
      (`[batch, 1]` for a single-logit binary model).
    frontend: optional per-example transform applied to `x` first, e.g. `frontend.log_mel(...)`,
      so that gradients flow from the model's input back to the waveform.

  Returns:
    `logits_fn(params, x) -> logits` for one unbatched example.

  Example:
    >>> logits_fn = model_logits(model, frontend=log_mel(sample_rate=16000, n_fft=512,
    ...                                                   hop_length=256, n_mels=40))
    >>> loss_fn = softmax_cross_entropy(logits_fn)
  """

  mode = {"train": False} if _takes_train(model) else {}

  def logits_fn(params, x):
    features = frontend(x) if frontend is not None else x
    # A tuple of heads' logits (a multi-head model) gives the tuple of their rows.
    return jax.tree.map(lambda logits: logits[0], model.apply(params, features[None], **mode))

  return logits_fn


def _labels(logits: jax.Array, y: jax.Array, name: str, num_classes: int, binary: bool = False):
  """`y` checked against `logits` (dtype, shape), clamped into range, and the `label_range`
  factor (1, or NaN for a label outside `[0, num_classes)`) that the loss is multiplied by."""
  where = f"soundjax.losses.{name}"
  y = checks.labels(y, shape=logits.shape[:-1], where=where, binary=binary)
  factor = checks.label_range(y, num_classes, dtype=logits.dtype, where=where)
  # Clamped so that no gather wraps (-1 -> the last class) or reads out of bounds.
  return jnp.clip(y, 0, num_classes - 1), factor


def softmax_cross_entropy_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Cross-entropy of `[..., classes]` logits against integer labels `[...]`.

  Raises:
    TypeError, ValueError: (when traced) `y` is not integer or not of shape `logits.shape[:-1]`.
  """
  logits = jnp.asarray(logits)
  y, factor = _labels(logits, y, "softmax_cross_entropy", logits.shape[-1])
  return optax.softmax_cross_entropy_with_integer_labels(logits, y) * factor


def sigmoid_cross_entropy_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Binary cross-entropy of single-logit outputs `[..., 1]` against labels `[...]` in {0, 1}.

  Raises:
    TypeError, ValueError: (when traced) `y` is not integer (or bool) or not of shape
      `logits.shape[:-1]`.
  """
  logits = jnp.asarray(logits)
  y, factor = _labels(logits, y, "sigmoid_binary_cross_entropy", 2, binary=True)
  logit = logits[..., 0]
  return optax.sigmoid_binary_cross_entropy(logit, y.astype(logit.dtype)) * factor


def _targets(logits: jax.Array, y: jax.Array, where: str) -> jax.Array:
  """Multi-label targets `y` checked against `logits` (same shape), as the logits' dtype."""
  y = jnp.asarray(y)
  if y.shape != logits.shape:
    raise ValueError(f"{where}: targets must have the logits' shape {logits.shape} (one value "
                     f"in [0, 1] per frame and class), got shape {y.shape}")
  return y.astype(logits.dtype)


def multilabel_sigmoid_cross_entropy_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Binary cross-entropy of `[..., classes]` logits against targets of the same shape, averaged
  over the classes (Keras' `binary_crossentropy`): `[...]`, e.g. one value per frame.

  Raises:
    ValueError: (when traced) `y` is not of the logits' shape.
  """
  logits = jnp.asarray(logits)
  y = _targets(logits, y, "soundjax.losses.multilabel_sigmoid_cross_entropy")
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y), axis=-1)


# Config name -> (loss on logits and labels, prediction from logits).
LOGIT_LOSSES = {
    "softmax_cross_entropy": (softmax_cross_entropy_on_logits,
                              lambda logits: jnp.argmax(logits, axis=-1)),
    "sigmoid_binary_cross_entropy": (sigmoid_cross_entropy_on_logits,
                                     lambda logits: (logits[..., 0] > 0).astype(jnp.int32)),
    "multilabel_sigmoid_cross_entropy": (multilabel_sigmoid_cross_entropy_on_logits,
                                         lambda logits: (logits > 0).astype(jnp.int32)),
}
# Losses whose `y` has the logits' shape (targets per class), not one class index per row.
MULTILABEL_LOSSES = ("multilabel_sigmoid_cross_entropy",)


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
  logits = jnp.asarray(logits)
  y, factor = _labels(logits, y, "softmax_cross_entropy", logits.shape[-1])
  targets = smooth_labels(y, logits.shape[-1], smoothing)
  return optax.softmax_cross_entropy(logits, targets) * factor


def _smoothed_sigmoid_cross_entropy(logits: jax.Array, y: jax.Array, smoothing: float):
  logits = jnp.asarray(logits)
  y, factor = _labels(logits, y, "sigmoid_binary_cross_entropy", 2, binary=True)
  # A binary label is the one-hot pair (no, yes); the target is its smoothed "yes":
  # y (1 - a) + a / 2.
  targets = smooth_labels(y, 2, smoothing)[..., 1]
  return optax.sigmoid_binary_cross_entropy(logits[..., 0], targets) * factor


def _smoothed_multilabel_cross_entropy(logits: jax.Array, y: jax.Array, smoothing: float):
  logits = jnp.asarray(logits)
  y = _targets(logits, y, "soundjax.losses.multilabel_sigmoid_cross_entropy")
  # Each target is a binary label of its own: y (1 - a) + a / 2, as for the single-logit loss.
  targets = y * (1.0 - smoothing) + smoothing / 2.0
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1)


_SMOOTHED_LOSSES = {"softmax_cross_entropy": _smoothed_softmax_cross_entropy,
                    "sigmoid_binary_cross_entropy": _smoothed_sigmoid_cross_entropy,
                    "multilabel_sigmoid_cross_entropy": _smoothed_multilabel_cross_entropy}


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
  """Returns the `soundjax.types.LossFn` applying the named loss to `logits_fn(params, x)`.

  Args:
    logits_fn: `(params, x) -> logits[classes]` for one example (`model_logits`).
    name: a loss name of `LOGIT_LOSSES`.

  Returns:
    `loss_fn(params, x, y) -> scalar` for ONE example and its integer label `y` (shape `()`);
    NaN, with a NaN gradient, for a label outside the model's classes. For a multi-label loss,
    `y` holds the targets of the example's logits (e.g. `[frames, classes]`) and the loss is their
    mean over frames and classes.

  Raises:
    ValueError: an unknown `name`; (when `loss_fn` is traced) a `y` that is not a scalar.
    TypeError: (when traced) a `y` that is not integer, e.g. a one-hot vector.

  Example:
    >>> loss_fn = per_example_loss(model_logits(model), "softmax_cross_entropy")
    >>> losses = jax.vmap(loss_fn, in_axes=(None, 0, 0))(variables, xs, ys)  # ys: int [batch]
  """
  loss, _ = loss_on_logits(name)
  where = f"soundjax.losses.{name}"

  if name in MULTILABEL_LOSSES:
    return lambda params, x, y: jnp.mean(loss(logits_fn(params, x), y))

  def loss_fn(params, x, y):
    y = checks.labels(y, shape=(), where=where, binary=name == "sigmoid_binary_cross_entropy",
                      per_example=True)
    return loss(logits_fn(params, x), y)

  return loss_fn


def heads_loss_on_logits(name: str, weights: Sequence[float], label_smoothing: float = 0.0):
  """Returns `(loss(logits, y), predict(logits))` of a multi-head model (one label per head).

  `logits` is the model's tuple of per-head logits `([..., K_0], [..., K_1], ...)` and `y` the
  integer labels `[..., heads]`; the loss is `sum_i weights[i] * loss_i(logits[i], y[..., i])`
  with `loss_i` the named (smoothed) loss of one head, e.g. Paper 2's phoneme model: onset and
  nucleus heads weighted 0.6 / 0.4. `predict` gives `[..., heads]`.

  Args:
    name: a loss name of `LOGIT_LOSSES` with one class index per row (not multi-label).
    weights: one positive weight per head, in the order of the logits.
    label_smoothing: as `smoothed_loss_on_logits`, for every head.

  Raises:
    ValueError: an unknown or multi-label `name`, or weights that are not positive numbers;
      (when the loss is traced) logits that are not one array per weight, or a `y` whose shape is
      not the logits' rows times heads.

  Example:
    >>> loss, predict = heads_loss_on_logits("softmax_cross_entropy", (0.6, 0.4))
    >>> loss((onset_logits, nucleus_logits), y)  # y: int [batch, 2]
  """
  if name in MULTILABEL_LOSSES:
    raise ValueError(f"{name} takes per-class targets; a multi-head loss takes one class index "
                     "per head: use 'softmax_cross_entropy'.")
  weights = tuple(checks.positive(f"weights[{i}]", w) for i, w in enumerate(weights))
  if not weights:
    raise ValueError("weights must hold one positive weight per head, got none.")
  head_loss = smoothed_loss_on_logits(name, label_smoothing)
  _, head_predict = loss_on_logits(name)
  where = "soundjax.losses.heads_loss_on_logits"

  def heads(logits):
    if not isinstance(logits, (tuple, list)) or len(logits) != len(weights):
      raise ValueError(f"{where}: logits must be a tuple of {len(weights)} arrays (one per "
                       f"weight), got {type(logits).__name__} of {jax.tree.structure(logits)}")
    return [jnp.asarray(head) for head in logits]

  def loss(logits, y):
    logits, y = heads(logits), jnp.asarray(y)
    rows = logits[0].shape[:-1]
    if y.shape != rows + (len(weights),):
      raise ValueError(f"{where}: y must hold one class index per head, shape "
                       f"{rows + (len(weights),)}, got shape {y.shape}")
    return sum(w * head_loss(head, y[..., i]) for i, (w, head) in enumerate(zip(weights, logits)))

  def predict(logits):
    return jnp.stack([head_predict(head) for head in heads(logits)], axis=-1)

  return loss, predict


def per_example_heads_loss(logits_fn: LogitsFn, name: str, weights: Sequence[float]) -> LossFn:
  """Returns the `soundjax.types.LossFn` of a multi-head model: `heads_loss_on_logits` of one
  example, whose `y` holds one integer label per head (shape `[heads]`).

  Example:
    >>> loss_fn = per_example_heads_loss(model_logits(phoneme_model), "softmax_cross_entropy",
    ...                                  (0.6, 0.4))
    >>> loss_fn(variables, patch, jnp.array([onset, nucleus]))
  """
  loss, _ = heads_loss_on_logits(name, weights)
  return lambda params, x, y: loss(logits_fn(params, x), y)


def softmax_cross_entropy(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)`: cross-entropy of the logits against integer label `y`.

  A `soundjax.types.LossFn` for one example; see `per_example_loss` for the label checks.

  Example:
    >>> loss_fn = softmax_cross_entropy(model_logits(model, frontend=log_mel))
  """
  return per_example_loss(logits_fn, "softmax_cross_entropy")


def sigmoid_binary_cross_entropy(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)` for a single-logit binary model and a label `y` in {0, 1}.

  A `soundjax.types.LossFn` for one example; see `per_example_loss` for the label checks.

  Example:
    >>> loss_fn = sigmoid_binary_cross_entropy(model_logits(detector))
  """
  return per_example_loss(logits_fn, "sigmoid_binary_cross_entropy")


# --- Croce and Hein's (2020) difference-of-logits-ratio (DLR) losses, for attacks ---

def _top_logits(logits: jax.Array, count: int, where: str) -> jax.Array:
  """The `count` largest logits `[..., count]`, largest first; fewer classes raise."""
  if logits.ndim == 0 or logits.shape[-1] < count:
    raise ValueError(f"{where}: needs logits of at least {count} classes ([..., classes]), got "
                     f"shape {logits.shape}")
  return jax.lax.top_k(logits, count)[0]


def _logit_of(logits: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0]


def dlr_on_logits(logits: jax.Array, y: jax.Array) -> jax.Array:
  """DLR loss of `[..., classes]` logits (at least 3 classes) against integer labels `[...]`.

  `-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)` with `z_pi1 >= z_pi2 >= z_pi3` the
  largest logits (AutoAttack's `dlr_loss`): unchanged by shifting or scaling the logits, and
  positive exactly when another class scores above `y`. Labels are checked as in
  `softmax_cross_entropy_on_logits` (a label outside the classes gives NaN).

  Raises:
    ValueError: fewer than 3 classes; (when traced) `y` not of shape `logits.shape[:-1]`.
    TypeError: (when traced) `y` is not integer.
  """
  logits = jnp.asarray(logits)
  top = _top_logits(logits, 3, "soundjax.losses.dlr")
  y, factor = _labels(logits, y, "dlr", logits.shape[-1])
  is_y = jax.nn.one_hot(y, logits.shape[-1], dtype=jnp.bool_)
  other = jnp.max(jnp.where(is_y, -jnp.inf, logits), axis=-1)
  return -(_logit_of(logits, y) - other) / (top[..., 0] - top[..., 2] + 1e-12) * factor


def dlr_targeted_on_logits(logits: jax.Array, y: jax.Array, target: jax.Array) -> jax.Array:
  """Targeted DLR loss of `[..., classes]` logits (at least 4 classes), labels and targets `[...]`.

  `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)` (AutoAttack's `dlr_loss_targeted`):
  ascending it moves the logit of target `t` above that of the true label `y`.

  Raises:
    ValueError: fewer than 4 classes; (when traced) `y` or `target` not of shape
      `logits.shape[:-1]`.
    TypeError: (when traced) `y` or `target` is not integer.
  """
  logits = jnp.asarray(logits)
  where = "soundjax.losses.dlr_targeted"
  top = _top_logits(logits, 4, where)
  y, factor = _labels(logits, y, "dlr_targeted", logits.shape[-1])
  target = checks.labels(target, shape=logits.shape[:-1], where=where, name="target")
  factor = factor * checks.label_range(target, logits.shape[-1], dtype=logits.dtype,
                                       where=where, name="target")
  target = jnp.clip(target, 0, logits.shape[-1] - 1)
  scale = top[..., 0] - (top[..., 2] + top[..., 3]) / 2 + 1e-12
  return -(_logit_of(logits, y) - _logit_of(logits, target)) / scale * factor


def dlr_loss(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)`: the DLR loss (`dlr_on_logits`) against integer label `y`.

  A `soundjax.types.LossFn` for one example, for any attack (APGD-DLR of AutoAttack:
  `attacks.apgd(dlr_loss(logits_fn), ...)`); `y` is checked as in `per_example_loss`.

  Example:
    >>> loss_fn = dlr_loss(model_logits(model, frontend=log_mel))
  """
  where = "soundjax.losses.dlr"

  def loss_fn(params, x, y):
    y = checks.labels(y, shape=(), where=where, per_example=True)
    return dlr_on_logits(logits_fn(params, x), y)

  return loss_fn


def dlr_targeted_loss(logits_fn: LogitsFn) -> LossFn:
  """Returns `loss_fn(params, x, y)`: the targeted DLR loss for `y = (label, target)`.

  A `soundjax.types.LossFn` for one example whose `y` is the integer pair `[label, target]`
  (shape `(2,)`; batches pass `[batch, 2]`), since the loss needs both: every attack passes `y`
  to its loss unchanged. Ascending it moves the prediction from `label` to `target`.

  Raises:
    ValueError: (when traced) `y` is not of shape `(2,)`; fewer than 4 classes.
    TypeError: (when traced) `y` is not integer.

  Example:
    >>> attack = attacks.apgd(dlr_targeted_loss(logits_fn), eps=0.01, num_steps=100)
    >>> x_adv = attack(params, x, jnp.array([label, target]), key)
  """
  where = "soundjax.losses.dlr_targeted"

  def loss_fn(params, x, y):
    y = jnp.asarray(y)
    if y.shape != (2,):
      raise ValueError(f"{where}: y must be one example's pair [label, target] (shape (2,)), "
                       f"got shape {y.shape}; batch the loss with jax.vmap(loss_fn, "
                       "in_axes=(None, 0, 0)) over pairs of shape [batch, 2]")
    y = checks.labels(y, shape=(2,), where=where)
    return dlr_targeted_on_logits(logits_fn(params, x), y[0], y[1])

  return loss_fn
