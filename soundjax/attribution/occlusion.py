"""Ranking, occlusion with replacement values, and the sliding-window occlusion map.

Ranking order (shared by `occlude` and the sweeps): `"positive"` occludes the highest attribution
first (the paper's `--ROAR 1`), `"negative"` the lowest first (`--ROAR 0`, "KAR"). Among equal
attributions the lower flat (row-major) index goes first, in both directions; -0.0 and 0.0 tie.

A replacement is `(x, key) -> fill` (`soundjax.types.Replacement`), an array of `x`'s shape
computed from the ORIGINAL example; only `replace_noise` uses the key. Dataset statistics are
passed in by the caller (computed on the training set), so every replacement is a pure function.
"""

import inspect
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from soundjax import checks
from soundjax.attribution.gradients import map_in_batches
from soundjax.types import Attribution, LossFn, Replacement

DIRECTIONS = ("positive", "negative")


def replace_constant(value: ArrayLike) -> Replacement:
  """Returns a replacement filling with `value` (scalar or array broadcastable to `x`).

  Example:
    >>> x_occluded = occlude(x, a, fraction=0.3, replacement=replace_constant(0.0))
  """
  if not np.all(np.isfinite(np.asarray(value))):  # An array of fill values, not one number.
    raise ValueError(f"value must be finite, got {value!r}")
  return lambda x, key: jnp.broadcast_to(jnp.asarray(value, x.dtype), x.shape)


def replace_dataset_mean(value: ArrayLike) -> Replacement:
  """Fills with the training-set mean (0 for z-normalised inputs; per-band arrays broadcast)."""
  return replace_constant(value)


def replace_dataset_min(value: ArrayLike) -> Replacement:
  """Fills with the training-set minimum (e.g. -0.1307 / 0.3081 for normalised MNIST)."""
  return replace_constant(value)


def replace_example_min(scale: float = 3.0) -> Replacement:
  """Fills with `scale` times the example's own minimum (the paper's `image_min`: 3 x min)."""
  checks.finite("scale", scale)
  return lambda x, key: jnp.full_like(x, scale * jnp.min(x))


def replace_example_max() -> Replacement:
  """Fills with the example's own maximum (the paper's `image_max`)."""
  return lambda x, key: jnp.full_like(x, jnp.max(x))


def replace_noise(stddev: float = 1.0, mean: float = 0.0) -> Replacement:
  """Fills with Gaussian noise `mean + stddev * N(0, 1)` drawn from the key (required).

  Example:
    >>> x_occluded = occlude(x, a, fraction=0.3, replacement=replace_noise(1.0), key=key)
  """
  checks.nonnegative("stddev", stddev)
  checks.finite("mean", mean)

  def fill(x, key):
    if key is None:
      raise ValueError("replace_noise needs a PRNG key: pass key=... to occlude")
    return mean + stddev * jax.random.normal(key, x.shape, x.dtype)

  return fill


# Config names -> factories. The paper's spellings (`image_min`, `image_max`, `custom`) are aliases.
REPLACEMENTS = {
    "mean": replace_dataset_mean,
    "dataset_min": replace_dataset_min,
    "example_min": replace_example_min,
    "image_min": replace_example_min,
    "example_max": replace_example_max,
    "image_max": replace_example_max,
    "constant": replace_constant,
    "custom": replace_constant,
    "noise": replace_noise,
}


def replacement(name: str, **values: Any) -> Replacement:
  """Builds a replacement from its config name and values.

  Args:
    name: one of "mean", "dataset_min", "example_min", "example_max", "constant", "noise" (or the
      paper's "image_min", "image_max", "custom").
    **values: the factory's arguments, e.g. `value=` for "mean", "dataset_min" and "constant".

  Returns:
    The replacement `(x, key) -> fill`.

  Example:
    >>> fill = replacement("dataset_min", value=-0.4242)
  """
  checks.one_of("replacement", name, REPLACEMENTS)
  factory = REPLACEMENTS[name]
  try:
    inspect.signature(factory).bind(**values)
  except TypeError as error:
    raise ValueError(f"replacement {name!r} takes {inspect.signature(factory)}: {error}") from None
  return factory(**values)


def occlusion_count(fraction: float, size: int) -> int:
  """The number of occluded cells: `round(fraction * size)` (Python rounding, ties to even)."""
  checks.fraction("fraction", fraction)
  return int(round(fraction * size))


def rank(a: jax.Array, *, direction: str = "positive") -> jax.Array:
  """Returns each cell's occlusion order (0 = occluded first), an int32 array of `a`'s shape.

  `rank(a) < k` selects exactly the `k` cells occluded first, for any (even traced) `k`.
  """
  checks.one_of("direction", direction, DIRECTIONS)
  order = jnp.argsort(jnp.ravel(a), stable=True, descending=direction == "positive")
  ranks = jnp.zeros(a.size, jnp.int32).at[order].set(jnp.arange(a.size, dtype=jnp.int32))
  return ranks.reshape(a.shape)


def occlude(x: jax.Array, a: jax.Array, *, fraction: float, replacement: Replacement,
            direction: str = "positive", key: Optional[jax.Array] = None) -> jax.Array:
  """Replaces exactly `round(fraction * x.size)` cells of `x`, ranked by attribution `a`.

  Args:
    x: one example.
    a: its attribution, same shape.
    fraction: static share of cells to occlude, in [0, 1].
    replacement: `(x, key) -> fill`, e.g. `replace_dataset_mean(0.0)`.
    direction: "positive" occludes the highest attributions, "negative" the lowest.
    key: PRNG key for keyed replacements (`replace_noise`).

  Returns:
    The occluded example.

  Example:
    >>> x_occluded = occlude(x, a, fraction=0.1, replacement=replace_example_max())
  """
  if not callable(replacement):
    raise ValueError(f"replacement must be a callable (x, key) -> fill, got {replacement!r}")
  if a.shape != x.shape:
    raise ValueError(f"attribution shape {a.shape} differs from input shape {x.shape}")
  count = occlusion_count(fraction, x.size)
  return jnp.where(rank(a, direction=direction) < count, replacement(x, key), x)


def _as_pair(name: str, value: Union[int, Sequence[int]]) -> tuple:
  pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
  if len(pair) != 2:
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
  for item in pair:
    checks.integer(name, item)
  return pair


def _window_masks(length: int, window: int, stride: int, dtype) -> np.ndarray:
  """`[num_windows, length]` 0/1 cover of each window along one axis; the last one is flush
  with the edge so that every cell is covered."""
  if window > length:
    raise ValueError(f"window {window} is longer than the input axis {length}")
  starts = list(range(0, length - window + 1, stride))
  if starts[-1] != length - window:
    starts.append(length - window)
  cells = np.arange(length)
  starts = np.asarray(starts)[:, None]
  return ((cells >= starts) & (cells < starts + window)).astype(dtype)


def occlusion_map(loss_fn: LossFn, *, window: Union[int, Sequence[int]],
                  stride: Union[int, Sequence[int], None] = None,
                  fill: Union[float, Replacement] = 0.0,
                  batch_size: Optional[int] = None) -> Attribution:
  """Returns the sliding-window occlusion attribution over the first two axes of `x`.

  Each window (a patch of a spectrogram or image, all trailing axes included) is replaced by
  `fill` and the loss re-evaluated; a cell's attribution is the INCREASE in loss, `L(x occluded)
  - L(x)`, averaged over the windows covering it. Positive = the cell supports the true label,
  like a class-score drop. All windows run in one `vmap` (or `lax.map` chunks of `batch_size`).

  Args:
    loss_fn: `(params, x, y) -> scalar` for one example (a `soundjax.types.LossFn`).
    window: patch size, an int or (rows, cols).
    stride: step between patches, an int or pair; defaults to `window` (no overlap). A last patch
      flush with each edge is added so that every cell is covered.
    fill: a constant or a replacement `(x, key) -> fill` (e.g. `replace_noise(1.0)`).
    batch_size: windows per chunk; None evaluates all at once.

  Returns:
    `attribution(params, x, y, key) -> a` with `a.shape == x.shape`.

  Example:
    >>> attribution = occlusion_map(loss_fn, window=(8, 8), stride=4)
  """
  window = _as_pair("window", window)
  stride = window if stride is None else _as_pair("stride", stride)
  checks.optional_integer("batch_size", batch_size)
  fill_fn = fill if callable(fill) else replace_constant(fill)

  def attribution(params, x, y, key):
    if x.ndim < 2:
      raise ValueError(f"occlusion_map needs an input with >= 2 axes, got shape {x.shape}")
    rows = _window_masks(x.shape[0], window[0], stride[0], x.dtype)
    cols = _window_masks(x.shape[1], window[1], stride[1], x.dtype)
    trailing = (1,) * (x.ndim - 2)
    fill_values = fill_fn(x, key)

    def window_loss(row, col):
      patch = jnp.outer(row, col).reshape(x.shape[:2] + trailing) > 0
      return loss_fn(params, jnp.where(patch, fill_values, x), y)

    grid = (np.repeat(rows, len(cols), axis=0), np.tile(cols, (len(rows), 1)))
    losses = map_in_batches(lambda rc: window_loss(*rc), grid, batch_size)
    increase = (losses - loss_fn(params, x, y)).reshape(len(rows), len(cols))
    # Separable windows: the sum over covering windows is rows^T @ increase @ cols.
    total = jnp.einsum("ih,ij,jw->hw", rows, increase, cols)
    covered = np.outer(rows.sum(0), cols.sum(0))
    return jnp.broadcast_to((total / covered).reshape(x.shape[:2] + trailing), x.shape)

  return attribution
