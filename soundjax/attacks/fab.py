"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce and Hein, 2020), per example.

A minimum-norm attack: each step linearises the gap `z_target - z_label` of the logits at the
iterate, projects both the iterate and the clean input onto that linearised boundary (the
smallest `norm` step that reaches it inside the box, `boundary_step`), and moves to a convex
combination of the two projections, overshot by `eta`, weighted towards the clean input's by
`alpha = min(|d_iterate| / (|d_iterate| + |d_clean|), alpha_max)`. An iterate that is
misclassified (as any class other than the label) is recorded if it is the closest found so far,
and the search steps back towards the clean input by `beta`. The result is the closest
misclassified iterate within the budget, else `x`.

The semantics follow the AutoAttack reference (`autoattack/fab_base.py`, `attack_single_run`
with `is_targeted=True`; `fab_pt.py`, `get_diff_logits_grads_batch_targeted`; the projections
of `fab_projections.py`; `perturb`'s restarts and its final check against `eps`). The reference's
sort-and-bisect projections become one sort and a cumulative sum per projection
(`boundary_step`): the same minimiser, no bisection and no data-dependent shapes.

Deviations from the reference (which batches images in [0, 1]):
- The box is `bounds`, widened to contain `x` as in `core.project_bounds` (the reference
  clamps to [0, 1] in its steps and projections); None is unbounded.
- An iterate counts only inside the whole budget: the `norm` ball and, with `snr_db`, the SNR
  floor (the reference keeps the closest misclassified iterate and drops it at the end if it
  lies outside eps: the same result when eps is the only budget). The result is projected with
  `core.budget`, as every attack here.
- The projections treat a coordinate as fixed only where its weight is exactly 0, after the
  weights are scaled by their largest magnitude (the reference zeroes weights below 1e-8 in
  L2): the step does not depend on the scale of the model's logits.
- A clean input already misclassified is returned as it is (distance 0), as the reference
  leaves it unattacked; a point with a NaN or an infinity (in it or its logits) never counts.
- Restart `r > 0` starts at a random point of `norm` size `eps / 2` drawn from
  `fold_in(key, r)` (the reference's global torch RNG).
"""

from typing import Optional

import jax
import jax.numpy as jnp

from soundjax import checks
from soundjax.attacks import core
from soundjax.types import Attack, Bounds, LogitsFn

_FLOOR = 1e-8  # the reference's floor on the size of both projections' steps in `alpha`
_WHERE = "soundjax.attacks.fab_targeted"


def _smallest_level(weights: jax.Array, breaks: jax.Array, need: jax.Array) -> jax.Array:
  """The smallest `lam >= 0` with `sum_i weights_i * min(lam, breaks_i) >= need`; infinity if
  no `lam` reaches `need`.

  The sum is piecewise linear and nondecreasing in `lam`, with a kink at each break: sorted by
  break, its value at break `k` is the sum of `weights * breaks` below it plus `breaks_k` times
  the weights from `k` on. The first break where it reaches `need` bounds the linear piece that
  holds `lam`. Weights are >= 0 and breaks >= 0 (infinite where a coordinate never saturates;
  such a coordinate must have a positive weight).
  """
  breaks, weights = jax.lax.sort((breaks, weights), num_keys=1)
  zero = jnp.zeros(1, weights.dtype)
  below = jnp.concatenate([zero, jnp.cumsum(weights * breaks)])  # below[k]: breaks before k
  above = jnp.cumsum(weights[::-1])[::-1]  # above[k]: weights from break k on
  above = jnp.concatenate([above, zero])
  starts = jnp.concatenate([zero, breaks])  # the sum at starts[k] is reached[k]
  reached = jnp.where(jnp.isfinite(starts), below + starts * above, jnp.inf)
  enough = reached >= need
  k = jnp.maximum(jnp.argmax(enough), 1)  # the piece [starts[k - 1], starts[k]]
  ratio = (need - below[k - 1]) / jnp.where(above[k - 1] > 0, above[k - 1], 1)
  level = jnp.clip(ratio, starts[k - 1], starts[k])
  return jnp.where(need <= 0, 0.0, jnp.where(jnp.any(enough), level, jnp.inf))


def boundary_step(norm: str, w: jax.Array, value: jax.Array, lower: Optional[jax.Array] = None,
                  upper: Optional[jax.Array] = None) -> jax.Array:
  """The smallest `norm` step `d` onto the hyperplane `value + w . d = 0` inside a box.

  The reference's `projection_linf` and `projection_l2` for one point `t` and the hyperplane
  `w . z = b` are `boundary_step(norm, w, w . t - b, lo - t, hi - t)`: minimise `||d||` subject
  to `w . d = -value` and `lower <= d <= upper`. Where the box keeps the hyperplane out of reach,
  `d` is the box's corner that gets closest to it (each coordinate moved all the way to the face
  that lowers `|value + w . d|`; coordinates of zero weight stay). The Linf minimiser is not
  unique: this is the reference's, each coordinate moved by `min(lam, its room)`.

  Args:
    norm: "linf" or "l2".
    w: the hyperplane's normal (any shape).
    value: `w . t - b`, the linear function's value at the point (a scalar).
    lower: per coordinate, the most negative step allowed (<= 0; None or -inf: unbounded).
    upper: per coordinate, the most positive step allowed (>= 0; None or inf: unbounded).

  Returns:
    `d`, of `w`'s shape.
  """
  shape = w.shape
  w = jnp.ravel(w)
  lower = jnp.full_like(w, -jnp.inf) if lower is None else jnp.ravel(lower)
  upper = jnp.full_like(w, jnp.inf) if upper is None else jnp.ravel(upper)
  # Scaled so that the largest weight is 1 (the minimiser does not change): no square of a weight
  # under- or overflows unless it is negligible next to the largest.
  scale = jnp.max(jnp.abs(w))
  w = w / jnp.where(scale > 0, scale, 1)
  side = jnp.where(value >= 0, 1.0, -1.0).astype(w.dtype)
  need = side * value / jnp.where(scale > 0, scale, 1)  # |value|: the decrease of side * w . d
  w = side * w
  # Each coordinate moves against its weight, as far as the box lets it: its room.
  room = jnp.maximum(jnp.where(w > 0, -lower, upper), 0)
  active = w != 0
  if norm == "linf":
    # d_i = -sign(w_i) min(lam, room_i); the decrease is sum |w_i| min(lam, room_i).
    weights, breaks = jnp.abs(w), room
  else:
    # d_i = -sign(w_i) min(mu |w_i|, room_i); the decrease is sum w_i^2 min(mu, room_i / |w_i|).
    weights = jnp.square(w)
    active = weights > 0
    breaks = room / jnp.where(active, jnp.abs(w), 1)
  level = _smallest_level(jnp.where(active, weights, 0), jnp.where(active, breaks, 0), need)
  move = level if norm == "linf" else level * jnp.abs(w)
  d = jnp.where(active, -jnp.sign(w) * jnp.minimum(move, room), 0)
  return jnp.where(scale > 0, d, 0).reshape(shape)


def fab_targeted(logits_fn: LogitsFn, *, eps: float, norm: str = "linf", num_steps: int = 100,
                 num_restarts: int = 1, alpha_max: float = 0.1, eta: float = 1.05,
                 beta: float = 0.9, bounds: Bounds = None, snr_db: Optional[float] = None,
                 unroll: Optional[bool] = None) -> Attack:
  """FAB-T: the closest misclassified point found on the way to the target's boundary.

  Each of `num_steps` steps linearises `g = z_target - z_label` at the iterate `x_k`, takes the
  smallest steps `d_k` (from `x_k`) and `d_0` (from `x`) onto `{g(x_k) + grad . (v - x_k) = 0}`
  inside the box (`boundary_step`), and moves to `x_{k+1} = (1 - a)(x_k + eta d_k) + a (x +
  eta d_0)`, `a = min(|d_k| / (|d_k| + |d_0|), alpha_max)`, clipped to the box. A misclassified
  `x_{k+1}` (argmax not the label) is kept if it is the closest inside the budget so far, and
  the iterate steps back to `x + beta (x_{k+1} - x)`. The first restart starts at `x`; restart
  `r > 0` (run only while no restart has succeeded) at a random point of size `eps / 2`. Per
  example, with no host sync: the steps run as `apgd` decides (`unroll`), restarts in a
  `lax.while_loop`.

  Args:
    logits_fn: `(params, x) -> logits` of one example, `[classes]`.
    eps: radius of the `norm` ball, >= 0: a misclassified point counts only inside it; may be a
      traced scalar (one compile for a sweep).
    norm: "linf" or "l2".
    num_steps: steps per restart, >= 1 (each one gradient and two forward passes).
    num_restarts: runs, >= 1, until one finds a point inside the budget.
    alpha_max: the largest weight of the clean input's projection, in [0, 1].
    eta: the overshoot of both projections, >= 1.
    beta: the step back towards `x` after a success, in [0, 1].
    bounds: optional `(lo, hi)` box for every iterate (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB: a point counts only above it.
    unroll: as `core.iterative`: True traces the steps straight, False as a `lax.fori_loop`,
      None decides at trace time (straight on CPU up to `core.MAX_UNROLLED_STEPS`).

  Returns:
    `attack(params, x, pair, key) -> x_adv` for `pair = [label, target]` (integers, shape
    `(2,)`, as `losses.dlr_targeted_loss`): the closest misclassified point found inside the
    budget, projected with `core.budget`, else `x`. `key` draws the restarts' starts only.

  Example:
    >>> attack = jax.jit(jax.vmap(fab_targeted(logits_fn, eps=0.01, bounds=(-1.0, 1.0)),
    ...                           in_axes=(None, 0, 0, 0)))
    >>> x_adv = attack(params, x, jnp.stack([labels, targets], -1), keys)
  """
  checks.one_of("norm", norm, core.NORMS)
  checks.nonnegative_or_traced("eps", eps)
  checks.integer("num_steps", num_steps)
  checks.integer("num_restarts", num_restarts)
  checks.fraction("alpha_max", alpha_max)
  checks.fraction("beta", beta)
  if not (checks.is_number(eta) and 1.0 <= eta < float("inf")):
    raise ValueError(f"eta must be a finite number >= 1, got {eta!r}")
  checks.function("logits_fn", logits_fn, _WHERE)
  checks.bounds(bounds)
  project = core.budget(norm, eps, bounds, snr_db)
  size = (lambda v: jnp.max(jnp.abs(v))) if norm == "linf" else core.l2_norm

  def inside(delta, x):
    """Whether `delta` meets the ball and the SNR floor (the box holds by construction)."""
    ok = size(delta) <= eps
    return ok if snr_db is None else ok & (core.rms(delta) <= core.snr_amplitude(x, snr_db))

  def attack(params, x, pair, key):
    pair = jnp.asarray(pair)
    if pair.shape != (2,):
      raise ValueError(f"{_WHERE}: pair must be one example's [label, target] (shape (2,)), "
                       f"got shape {pair.shape}; batch with jax.vmap(attack, in_axes=(None, 0, "
                       "0, 0)) over pairs of shape [batch, 2]")
    pair = checks.labels(pair, shape=(2,), where=_WHERE, name="pair")
    label, target = pair[0], pair[1]
    x0 = jnp.ravel(x)
    if bounds is None:
      lo = hi = None
    else:
      lo, hi = jnp.minimum(bounds[0], x0), jnp.maximum(bounds[1], x0)
    clip = (lambda v: v) if bounds is None else (lambda v: jnp.clip(v, lo, hi))
    room = lambda v: (None, None) if bounds is None else (lo - v, hi - v)

    def logits(v):
      z = logits_fn(params, v.reshape(x.shape))
      if z.ndim != 1:
        raise ValueError(f"{_WHERE}: logits_fn must return one example's logits [classes], "
                         f"got shape {z.shape}")
      return z

    def gap(v):
      z = logits(v)
      factor = checks.label_range(pair, z.shape[0], dtype=z.dtype, where=_WHERE, name="pair")
      return (z[target] - z[label]) * jnp.prod(factor)

    gap_and_grad = jax.value_and_grad(gap)

    def fooled(v):
      z = logits(v)
      return jnp.all(jnp.isfinite(v)) & jnp.all(jnp.isfinite(z)) & (jnp.argmax(z) != label)

    def step(_, state):
      v, best, best_size = state
      value, grad = gap_and_grad(v)
      d_v = boundary_step(norm, grad, value, *room(v))
      d_x = boundary_step(norm, grad, value + jnp.vdot(grad, x0 - v), *room(x0))
      a_v, a_x = jnp.maximum(size(d_v), _FLOOR), jnp.maximum(size(d_x), _FLOOR)
      alpha = jnp.minimum(a_v / (a_v + a_x), alpha_max)
      v = clip((v + eta * d_v) * (1 - alpha) + (x0 + eta * d_x) * alpha)
      hit = fooled(v)
      distance = size(v - x0)
      better = hit & (distance < best_size) & inside((v - x0).reshape(x.shape), x)
      best = jnp.where(better, v, best)
      best_size = jnp.where(better, distance, best_size)
      return jnp.where(hit, x0 + (v - x0) * beta, v), best, best_size

    def run(start, best, best_size):
      return core.run_steps(step, (start, best, best_size), num_steps, unroll)[1:]

    def random_start(r):
      if norm == "linf":
        t = jax.random.uniform(jax.random.fold_in(key, r), x0.shape, x0.dtype, -1.0, 1.0)
      else:
        t = jax.random.normal(jax.random.fold_in(key, r), x0.shape, x0.dtype)
      return clip(x0 + 0.5 * eps * t / jnp.maximum(size(t), jnp.finfo(x0.dtype).tiny))

    # Already misclassified: x itself is the closest misclassified point.
    best_size = jnp.where(fooled(x0), 0.0, jnp.inf).astype(x0.dtype)
    best, best_size = run(x0, x0, best_size)
    if num_restarts > 1:
      def unfinished(state):
        r, _, best_size = state
        return (r < num_restarts) & ~jnp.isfinite(best_size)

      def restart(state):
        r, best, best_size = state
        return (r + 1,) + run(random_start(r), best, best_size)

      _, best, best_size = jax.lax.while_loop(unfinished, restart, (1, best, best_size))
    delta = (best - x0).reshape(x.shape)
    return jnp.where(jnp.isfinite(best_size), x + project(delta, x), x)

  return attack
