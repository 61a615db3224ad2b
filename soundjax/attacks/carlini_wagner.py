"""Carlini & Wagner's L2 attack (2017), plus the box change of variables and the binary search
over the loss constant that the L-BFGS attack shares.
"""

from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from soundjax import checks
from soundjax.types import Attack, Bounds, LogitsFn

# Keeps arctanh finite for inputs on the box's edge (Carlini's code uses the same factor).
_TANH_MARGIN = 0.999999
# Binary search: an upper bound above this means "no success yet", so grow the constant by 10.
_NO_UPPER = 1e10

# `run(const) -> (x_adv, squared_l2, found)`: one optimisation with loss constant `const`.
Run = Callable[[jax.Array], Tuple[jax.Array, jax.Array, jax.Array]]


def tanh_box(bounds: Bounds, x: Optional[jax.Array] = None) -> Tuple[Callable, Callable]:
  """Change of variables `x = mid + half * tanh(w)` that maps all of R^n into the open box.

  With a clean input `x`, the box is widened per element to contain it, `[min(lo, x), max(hi,
  x)]`, as `core.project_bounds` does for the gradient attacks: a sample outside the box may move
  towards it, never further out, and is not pulled into it (which would cost a perturbation as
  large as its overshoot). Such a sample starts on its box's edge, where tanh is flat; Adam's
  per-coordinate scaling still moves it, L-BFGS does so more slowly.

  Args:
    bounds: `(lo, hi)`, or None for the identity (an unconstrained input).
    x: the clean input the box is widened to contain; None for the box itself.

  Returns:
    `(to_w, from_w)`, inverse to each other up to the clipping of `x` off the box's edge.
  """
  checks.bounds(bounds)
  if bounds is None:
    return (lambda x: x), (lambda w: w)
  lo, hi = bounds
  if x is not None:
    lo, hi = jnp.minimum(lo, x), jnp.maximum(hi, x)
  mid, half = (hi + lo) / 2, (hi - lo) / 2

  def to_w(x):
    return jnp.arctanh(jnp.clip((x - mid) / half, -_TANH_MARGIN, _TANH_MARGIN))

  return to_w, (lambda w: mid + half * jnp.tanh(w))


def binary_search_const(run: Run, x: jax.Array, *, initial_const: float,
                        num_searches: int) -> jax.Array:
  """Searches the constant that trades distance for success and keeps the closest success.

  After a success the constant halves towards the largest failing one; after a failure it moves
  up to the midpoint, or grows tenfold while no success bounds it (Carlini & Wagner's schedule).

  Args:
    run: one optimisation at a given constant.
    x: the clean input, returned when no run succeeds.
    initial_const: the first constant, > 0.
    num_searches: number of runs, >= 1.

  Returns:
    The successful `x_adv` of smallest squared L2 distance, or `x`.
  """

  def body(_, carry):
    const, lower, upper, best_adv, best_dist = carry
    adv, dist, found = run(const)
    better = found & (dist < best_dist)
    upper = jnp.where(found, jnp.minimum(upper, const), upper)
    lower = jnp.where(found, lower, jnp.maximum(lower, const))
    const = jnp.where(upper < _NO_UPPER / 10, (lower + upper) / 2, const * 10)
    return (const, lower, upper, jnp.where(better, adv, best_adv),
            jnp.where(better, dist, best_dist))

  scalar = lambda v: jnp.asarray(v, x.dtype)
  carry = (scalar(initial_const), scalar(0.0), scalar(_NO_UPPER), x, scalar(jnp.inf))
  return jax.lax.fori_loop(0, num_searches, body, carry)[3]


def margin(logits: jax.Array, y: jax.Array, *, confidence: float, targeted: bool) -> jax.Array:
  """C&W's f before the hinge: negative exactly when the attack succeeds with `confidence`.

  Untargeted: `z_y - max_{j != y} z_j + confidence`;
  targeted: `max_{j != y} z_j - z_y + confidence`.
  """
  is_y = jnp.arange(logits.shape[-1]) == y
  real = jnp.sum(jnp.where(is_y, logits, 0))
  other = jnp.max(jnp.where(is_y, -jnp.inf, logits))
  return (other - real if targeted else real - other) + confidence


def carlini_wagner_l2(logits_fn: LogitsFn, *, confidence: float = 0.0,
                      learning_rate: float = 5e-3, num_steps: int = 1000,
                      binary_search_steps: int = 5, initial_const: float = 1e-2,
                      bounds: Bounds = None, targeted: bool = False) -> Attack:
  """Carlini & Wagner's L2 attack: Adam on `||delta||^2 + c * max(margin, 0)` in tanh space.

  With `bounds`, `x_adv = mid + half * tanh(w)` stays in the box without clipping; with None the
  change of variables is the identity (for unbounded inputs such as standardised features). For
  audio in [-1, 1] pass `bounds=(-1.0, 1.0)` as the paper did. The box is widened to contain the
  clean `x` (`tanh_box`), so a sample outside it is never pulled in and distances are those of
  `x_adv - x`. Defaults follow CleverHans; the
  paper used lr 1e-5, confidence 500, 1000 steps, 2 binary-search steps and const 1e-2.

  Args:
    logits_fn: `(params, x) -> logits` for one example.
    confidence: kappa >= 0, how far past the decision boundary the margin must go.
    learning_rate: Adam's step size, > 0.
    num_steps: Adam steps per constant, >= 1.
    binary_search_steps: number of constants tried, >= 1.
    initial_const: first constant c, > 0.
    bounds: optional `(lo, hi)` box (widened to contain `x`).
    targeted: if True, `y` is the target class; otherwise the class to move away from.

  Returns:
    `attack(params, x, y, key) -> x_adv`: the successful iterate of smallest L2 seen, or `x`
    when none succeeded; `key` is unused.

  Example:
    >>> attack = carlini_wagner_l2(logits_fn, num_steps=200, bounds=(-1.0, 1.0))
  """
  checks.nonnegative("confidence", confidence)
  checks.positive("learning_rate", learning_rate)
  checks.integer("num_steps", num_steps)
  checks.integer("binary_search_steps", binary_search_steps)
  checks.positive("initial_const", initial_const)
  checks.bounds(bounds)
  optimizer = optax.adam(learning_rate)

  def attack(params, x, y, key):
    del key
    to_w, from_w = tanh_box(bounds, x)
    w0 = to_w(x)
    x0 = from_w(w0)  # distances from the box's image of x, so the start has distance 0

    def objective(w, const):
      x_new = from_w(w)
      dist = jnp.sum(jnp.square(x_new - x0))
      m = margin(logits_fn(params, x_new), y, confidence=confidence, targeted=targeted)
      return dist + const * jnp.maximum(m, 0), (x_new, dist, m < 0)

    def run(const):
      def body(_, carry):
        w, state, best_adv, best_dist, found = carry
        grads, (x_new, dist, ok) = jax.grad(objective, has_aux=True)(w, const)
        better = ok & (dist < best_dist)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int/float
          updates, state = optimizer.update(grads, state, w)
        return (optax.apply_updates(w, updates), state, jnp.where(better, x_new, best_adv),
                jnp.where(better, dist, best_dist), found | ok)

      carry = (w0, optimizer.init(w0), x, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(False))
      _, _, adv, dist, found = jax.lax.fori_loop(0, num_steps, body, carry)
      return adv, dist, found

    return binary_search_const(run, x, initial_const=initial_const,
                               num_searches=binary_search_steps)

  return attack
