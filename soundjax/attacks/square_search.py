"""The Square attack (Andriushchenko et al., 2020): random search on the logits, no gradients.

The score-based control for gradient masking: it queries `logits_fn` only, so a model whose
input gradients are zero or useless (a quantising input layer, a `stop_gradient`) does not stop
it. The semantics follow the AutoAttack reference (`autoattack/square.py`, Linf, margin loss):
the start is vertical stripes of +-eps, and each query moves one random window of the kept point
to +-eps (one sign per channel), keeping the new point only if it lowers the margin
`z_y - max_{i != y} z_i`; the search stops once the margin is <= 0 or the queries run out. The
window's area is a share `p` of the input's, halved on the reference's schedule of queries.

An input's first two axes are the ones windows span (time and frequency of a spectrogram, height
and width of an image) and any further axes are channels; a 1-D input (a waveform) has windows
that are intervals.
"""

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
_WHERE = "soundjax.attacks.square"


def _sides(num_queries: int, p_init: float, spatial: tuple) -> np.ndarray:
  """The window's side at each query: `round(sqrt(p * area))` (a 1-D input: `round(p * n)`)."""
  sides = np.empty(num_queries, np.int32)
  for i in range(num_queries):
    it = int(i / num_queries * 10000)
    p = p_init / 2 ** sum(it > threshold for threshold in _HALVINGS)
    area = p * math.prod(spatial)
    side = max(int(round(math.sqrt(area) if len(spatial) == 2 else area)), 1)
    sides[i] = min(side, min(spatial))
  return sides


def _window(spatial: tuple, corner: jax.Array, side: jax.Array) -> jax.Array:
  """A boolean mask of `spatial` shape, true on the cube of `side` from `corner`."""
  mask = jnp.ones(spatial, bool)
  for axis, size in enumerate(spatial):
    index = jnp.arange(size).reshape([-1 if a == axis else 1 for a in range(len(spatial))])
    mask = mask & (index >= corner[axis]) & (index < corner[axis] + side)
  return mask


def square(logits_fn: LogitsFn, *, eps: float, num_queries: int, norm: str = "linf",
           p_init: float = 0.8, bounds: Bounds = None, snr_db: Optional[float] = None) -> Attack:
  """Square attack, untargeted, on the margin loss: a black-box random search in the Linf ball.

  Per example and keyed: query `i` draws its window and signs from `fold_in(key, i)`, so a
  batched run (vmapped) gives each example the result it gets alone. The queries run in a
  `lax.while_loop` that ends when every example of the batch has a margin <= 0 or after
  `num_queries` (plus one query for the start, as the reference counts). Every point queried is
  projected onto the budget (`core.budget`: ball, optional SNR floor, box), and the kept margin
  never rises.

  Args:
    logits_fn: `(params, x) -> logits` for one example.
    eps: Linf radius, >= 0; may be a traced scalar (one compile for a sweep).
    num_queries: number of queries after the start, >= 1 (the reference uses 5000).
    norm: "linf" (the only norm implemented).
    p_init: the window's initial share of the input's area, in (0, 1] (the reference: 0.8).
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv` for the integer label `y`, the point of lowest margin
    found (the first with margin <= 0 once one is found). A label outside the model's classes
    gives a NaN margin, so the start is returned.

  Example:
    >>> attack = jax.jit(jax.vmap(square(logits_fn, eps=0.01, num_queries=5000,
    ...                                  bounds=(-1.0, 1.0)), in_axes=(None, 0, 0, 0)))
  """
  checks.one_of("norm", norm, ("linf",))
  checks.nonnegative_or_traced("eps", eps)
  checks.integer("num_queries", num_queries)
  if not (checks.is_number(p_init) and 0.0 < p_init <= 1.0):
    raise ValueError(f"p_init must be in (0, 1], got {p_init!r}")
  project = core.budget(norm, eps, bounds, snr_db)

  def attack(params, x, y, key):
    if x.ndim == 0:
      raise ValueError(f"{_WHERE}: x must have at least one axis, got a scalar")
    y = checks.labels(y, shape=(), where=_WHERE, per_example=True)
    start_key, query_key = jax.random.split(key)
    spatial, channels = x.shape[:2], x.shape[2:]
    sides = _sides(num_queries, p_init, spatial)
    # Per query, the exclusive upper limit of the window's corner on each axis: [queries, axes].
    corner_limit = jnp.asarray(np.asarray(spatial)[None] - sides[:, None] + 1)
    sides = jnp.asarray(sides)

    def margin_at(delta):
      logits = logits_fn(params, x + delta)
      factor = checks.label_range(y, logits.shape[-1], dtype=logits.dtype, where=_WHERE)
      return margin(logits, y, confidence=0.0, targeted=False) * factor

    def sign(key, shape):
      return jax.random.rademacher(key, shape, x.dtype)

    def unsolved(state):
      i, _, best_margin = state
      return (i < num_queries) & (best_margin > 0)

    def query(state):
      i, best, best_margin = state
      corner_key, sign_key = jax.random.split(jax.random.fold_in(query_key, i))
      corner = jax.random.randint(corner_key, (len(spatial),), 0, corner_limit[i])
      window = _window(spatial, corner, sides[i]).reshape(spatial + (1,) * len(channels))
      signs = sign(sign_key, (1,) * len(spatial) + channels)
      new = project(best + jnp.where(window, 2 * eps * signs, 0), x)
      new_margin = margin_at(new)
      better = new_margin < best_margin
      return i + 1, jnp.where(better, new, best), jnp.where(better, new_margin, best_margin)

    # Stripes: one sign per position of the last spatial axis (and channel), constant along the
    # others (the reference's vertical stripes; per sample for a waveform).
    stripes = sign(start_key, (1,) * (len(spatial) - 1) + x.shape[len(spatial) - 1:])
    start = project(eps * jnp.broadcast_to(stripes, x.shape), x)
    state = (jnp.int32(0), start, margin_at(start))
    return x + jax.lax.while_loop(unsolved, query, state)[1]

  return attack
