"""The Square attack (Andriushchenko et al., 2020): random search on the logits, no gradients.

The score-based control for gradient masking: it queries `logits_fn` only, so a model whose
input gradients are zero or useless (a quantising input layer, a `stop_gradient`) does not stop
it. The semantics follow the AutoAttack reference (`autoattack/square.py`, `attack_single_run`,
margin loss), per example; each query keeps the new point only if it lowers the margin
`z_y - max_{i != y} z_i`, and the search stops once the margin is <= 0 or the queries run out.
The window's area is a share `p` of the input's, halved on the reference's schedule of queries.

- Linf: the start is vertical stripes of +-eps, and each query moves one random window of the
  kept point to +-eps (one sign per channel).
- L2: the start is a grid of tiles of side `h // 5`, each the reference's pseudo-Gaussian
  bump pair (`eta`, randomly transposed) with a random sign per channel, scaled onto the sphere
  of radius eps. Each query draws two windows of one odd side: the second is emptied and the
  first gets its old content (unit norm per channel) plus a fresh signed bump, rescaled per
  channel to take the norm freed by both windows and the unused budget; the whole perturbation
  is then rescaled onto the sphere (then SNR floor and box, as every point here).

An input's first two axes are the ones windows span (time and frequency of a spectrogram, height
and width of an image) and any further axes are channels; a 1-D input (a waveform) has windows
that are intervals, whose L2 bump is the reference's rectangle bump of width 1 (no transpose).

Deviations from the reference (which batches images [c, h, w] in [0, 1]): windows' corners are
uniform over all positions (the reference's `random_int(0, h - s)` never draws the last one); the
L2 start's tile side is at least 1 and its first offset at least 0, and tiles that cross the
border are cropped (the reference fails on inputs under 5 wide or whose tiles overflow); norms
guarded by the reference's `1e-12` are the overflow-safe `core.l2_norm`; the box and SNR floor
are `core.budget`'s; keys replace the global torch RNG.
"""

import itertools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from soundjax import checks
from soundjax.attacks import core
from soundjax.attacks.carlini_wagner import margin
from soundjax.types import Attack, Bounds, LogitsFn

# The reference halves p after these query counts (rescaled from 10 000 queries to the budget).
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_TINY = 1e-12  # the reference's guard on divisions by a norm
_WHERE = "soundjax.attacks.square"


def _sides(num_queries: int, p_init: float, spatial: tuple, norm: str) -> np.ndarray:
  """The window's side at each query: `round(sqrt(p * area))` (a 1-D input: `round(p * n)`),
  at least 1 (Linf) or at least 3 and odd (L2), at most the input's shortest spatial axis."""
  sides = np.empty(num_queries, np.int32)
  for i in range(num_queries):
    it = int(i / num_queries * 10000)
    p = p_init / 2 ** sum(it > threshold for threshold in _HALVINGS)
    area = p * math.prod(spatial)
    side = int(round(math.sqrt(area) if len(spatial) == 2 else area))
    side = max(side, 1) if norm == "linf" else max(side, 3) | 1  # | 1: an even side + 1
    sides[i] = min(side, min(spatial))
  return sides


def _bump(sizes: tuple) -> np.ndarray:
  """The reference's `pseudo_gaussian_pert_rectangles(*sizes)` in closed form, for any number of
  axes: its k-th square (k = 0..max(sizes // 2)) adds 1 / (k + 1)^2 at Chebyshev distance <= k
  from the centre `sizes // 2`; unit L2 norm."""
  centre = [n // 2 for n in sizes]
  distance = np.zeros(sizes, np.int64)
  for axis, (n, c) in enumerate(zip(sizes, centre)):
    offsets = np.abs(np.arange(n) - c).reshape([-1 if a == axis else 1 for a in range(len(sizes))])
    distance = np.maximum(distance, offsets)
  tail = np.cumsum(1.0 / np.arange(max(centre) + 1, 0, -1) ** 2)[::-1]  # sum_{k >= d} 1/(k+1)^2
  bump = tail[distance]
  return bump / np.sqrt(np.sum(bump ** 2)) if bump.size else bump


def _pseudo_gaussian(side: int, dims: int) -> np.ndarray:
  """The reference's `meta_pseudo_gaussian_pert(side)` before its random transpose (float64, unit
  L2 norm): a bump on the first `side // 2` rows and a negated one on the rest."""
  rest = (side,) * (dims - 1)
  pattern = np.concatenate([_bump((side // 2,) + rest), -_bump((side - side // 2,) + rest)])
  return pattern / np.sqrt(np.sum(pattern ** 2))


def _start_tiles(spatial: tuple) -> tuple:
  """The L2 start's layout: per position its tile (-1 outside every tile) and the value of the
  tile's bump and of its transpose there; and the number of tiles."""
  side = max(spatial[0] // 5, 1)
  first = max((spatial[0] - 5 * side) // 2, 0)  # the reference uses the first axis's for both
  pattern = _pseudo_gaussian(side, len(spatial))
  tile, values = np.full(spatial, -1), np.zeros((2,) + spatial)
  starts = [range(first, first + n // side * side, side) for n in spatial]
  for k, corner in enumerate(itertools.product(*starts)):
    region = tuple(slice(c, c + side) for c in corner)
    crop = tuple(slice(0, max(min(side, n - c), 0)) for c, n in zip(corner, spatial))
    tile[region] = k
    values[0][region], values[1][region] = pattern[crop], pattern.T[crop]
  return tile, values, math.prod(len(s) for s in starts)


def _window(spatial: tuple, corner: jax.Array, side: jax.Array) -> jax.Array:
  """A boolean mask of `spatial` shape, true on the cube of `side` from `corner`."""
  mask = jnp.ones(spatial, bool)
  for axis, size in enumerate(spatial):
    index = jnp.arange(size).reshape([-1 if a == axis else 1 for a in range(len(spatial))])
    mask = mask & (index >= corner[axis]) & (index < corner[axis] + side)
  return mask


def _sign(key: jax.Array, shape: tuple, dtype) -> jax.Array:
  return jax.random.rademacher(key, shape, dtype)


def _linf(eps, shape: tuple, dtype, num_queries: int, p_init: float):
  """`start(key)` and `propose(best, i, key)`, perturbations before the projection, in Linf."""
  spatial, channels = shape[:2], shape[2:]
  sides = _sides(num_queries, p_init, spatial, "linf")
  # Per query, the exclusive upper limit of the window's corner on each axis: [queries, axes].
  corner_limit = jnp.asarray(np.asarray(spatial)[None] - sides[:, None] + 1)
  sides = jnp.asarray(sides)

  def start(key):
    # Stripes: one sign per position of the last spatial axis (and channel), constant along the
    # others (the reference's vertical stripes; per sample for a waveform).
    stripes = _sign(key, (1,) * (len(spatial) - 1) + shape[len(spatial) - 1:], dtype)
    return eps * jnp.broadcast_to(stripes, shape)

  def propose(best, i, key):
    corner_key, sign_key = jax.random.split(key)
    corner = jax.random.randint(corner_key, (len(spatial),), 0, corner_limit[i])
    window = _window(spatial, corner, sides[i]).reshape(spatial + (1,) * len(channels))
    signs = _sign(sign_key, (1,) * len(spatial) + channels, dtype)
    return best + jnp.where(window, 2 * eps * signs, 0)

  return start, propose


def _l2(eps, shape: tuple, dtype, num_queries: int, p_init: float):
  """`start(key)` and `propose(best, i, key)`, perturbations before the projection, in L2."""
  spatial, channels = shape[:2], shape[2:]
  unit = (1,) * len(channels)  # broadcasts a spatial mask over the channels
  axes = tuple(range(len(spatial)))
  sides = _sides(num_queries, p_init, spatial, "l2")
  corner_limit = jnp.asarray(np.asarray(spatial)[None] - sides[:, None] + 1)
  # Each distinct side's bump, zero-padded to the largest, and each query's row of the table.
  distinct, which = np.unique(sides, return_inverse=True)
  table = np.zeros((len(distinct),) + (distinct[-1],) * len(spatial))
  for row, side in enumerate(distinct):
    table[(row,) + (slice(side),) * len(spatial)] = _pseudo_gaussian(int(side), len(spatial))
  table, which, sides = jnp.asarray(table, dtype), jnp.asarray(which), jnp.asarray(sides)
  tile, values, num_tiles = _start_tiles(spatial)

  def channel_norm(v):
    return jnp.sqrt(jnp.sum(jnp.square(v), axes, keepdims=True))

  def sphere(delta):
    return eps * delta / (_TINY + core.l2_norm(delta))

  def signs_and_flips(key, count):
    # One draw (each costs compile time): the first sign of each row decides the transpose.
    draw = _sign(key, (count, 1 + math.prod(channels)), dtype)
    return draw[:, 1:].reshape((count,) + channels), draw[:, 0] > 0

  def start(key):
    signs, flips = signs_and_flips(key, num_tiles)
    bumps = jnp.where(flips[tile], jnp.asarray(values[1], dtype), jnp.asarray(values[0], dtype))
    return sphere(jnp.where((tile >= 0).reshape(spatial + unit), bumps.reshape(spatial + unit)
                            * signs[tile], 0))

  def propose(best, i, key):
    corner_key, sign_key = jax.random.split(key)
    limit = jnp.broadcast_to(corner_limit[i], (2, len(spatial)))  # no implicit rank promotion
    corners = jax.random.randint(corner_key, limit.shape, 0, limit)
    first, second = (_window(spatial, c, sides[i]).reshape(spatial + unit) for c in corners)
    signs, flip = signs_and_flips(sign_key, 1)
    pattern = jnp.where(flip[0], table[which[i]].T, table[which[i]])
    # The bump moved to the first window's corner by one-hot matrices (it is zero past the
    # query's side); a vmapped `dynamic_update_slice` is a scatter that doubles compile time.
    for axis, n in enumerate(spatial):
      shift = jnp.arange(n)[:, None] - corners[0][axis] == jnp.arange(table.shape[1])[None]
      pattern = jnp.moveaxis(jnp.tensordot(shift.astype(dtype), pattern, ([1], [axis])), 0, axis)
    bump = pattern.reshape(spatial + unit)
    old = jnp.where(first, best, 0)
    new = bump * signs.reshape((1,) * len(spatial) + channels) + old / (_TINY + channel_norm(old))
    # Per channel, the norm both windows held plus a share of the budget left unused.
    room = (jnp.maximum(eps ** 2 - core.l2_norm(best) ** 2, 0) / math.prod(channels)
            + channel_norm(jnp.where(first | second, best, 0)) ** 2)
    new = new / (_TINY + channel_norm(new)) * jnp.sqrt(room)
    return sphere(jnp.where(first, new, jnp.where(second, 0, best)))

  return start, propose


def square(logits_fn: LogitsFn, *, eps: float, num_queries: int, norm: str = "linf",
           p_init: float = 0.8, bounds: Bounds = None, snr_db: Optional[float] = None) -> Attack:
  """Square attack, untargeted, on the margin loss: a black-box random search in a Linf or L2 ball.

  Per example and keyed: query `i` draws its windows and signs from `fold_in(key, i)`, so a
  batched run (vmapped) gives each example the result it gets alone. The queries run in a
  `lax.while_loop` that ends when every example of the batch has a margin <= 0 or after
  `num_queries` (plus one query for the start, as the reference counts). Every point queried is
  projected onto the budget (`core.budget`: ball, optional SNR floor, box), and the kept margin
  never rises.

  Args:
    logits_fn: `(params, x) -> logits` for one example.
    eps: radius of the `norm` ball, >= 0; may be a traced scalar (one compile for a sweep).
    num_queries: number of queries after the start, >= 1 (the reference uses 5000).
    norm: "linf" (squares of +-eps) or "l2" (pseudo-Gaussian bumps on the eps sphere).
    p_init: the window's initial share of the input's area, in (0, 1] (the reference: 0.8).
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv` for the integer label `y`, the point of lowest margin
    found (the first with margin <= 0 once one is found). A label outside the model's classes
    gives a NaN margin, so the start is returned.

  Example:
    >>> attack = jax.jit(jax.vmap(square(logits_fn, eps=0.5, norm="l2", num_queries=5000,
    ...                                  bounds=(-1.0, 1.0)), in_axes=(None, 0, 0, 0)))
  """
  checks.one_of("norm", norm, core.NORMS)
  checks.nonnegative_or_traced("eps", eps)
  checks.integer("num_queries", num_queries)
  if not (checks.is_number(p_init) and 0.0 < p_init <= 1.0):
    raise ValueError(f"p_init must be in (0, 1], got {p_init!r}")
  project = core.budget(norm, eps, bounds, snr_db)
  steps = _linf if norm == "linf" else _l2

  def attack(params, x, y, key):
    if x.ndim == 0:
      raise ValueError(f"{_WHERE}: x must have at least one axis, got a scalar")
    y = checks.labels(y, shape=(), where=_WHERE, per_example=True)
    start_key, query_key = jax.random.split(key)
    start, propose = steps(eps, x.shape, x.dtype, num_queries, p_init)

    def margin_at(delta):
      logits = logits_fn(params, x + delta)
      factor = checks.label_range(y, logits.shape[-1], dtype=logits.dtype, where=_WHERE)
      return margin(logits, y, confidence=0.0, targeted=False) * factor

    def unsolved(state):
      i, _, best_margin = state
      return (i < num_queries) & (best_margin > 0)

    def query(state):
      i, best, best_margin = state
      new = project(propose(best, i, jax.random.fold_in(query_key, i)), x)
      new_margin = margin_at(new)
      better = new_margin < best_margin
      return i + 1, jnp.where(better, new, best), jnp.where(better, new_margin, best_margin)

    first = project(start(start_key), x)
    state = (jnp.int32(0), first, margin_at(first))
    return x + jax.lax.while_loop(unsolved, query, state)[1]

  return attack
