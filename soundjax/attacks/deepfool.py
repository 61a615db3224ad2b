"""DeepFool (Moosavi-Dezfooli et al., 2016): multi-class, over candidate classes, as CleverHans."""

import jax
import jax.numpy as jnp

from soundjax import checks
from soundjax.attacks import core
from soundjax.types import Attack, Bounds, LogitsFn

# Added to the distance to the nearest boundary so that each step crosses it (original code).
_STEP_SLACK = 1e-4


def deepfool(logits_fn: LogitsFn, *, num_candidates: int = 5, overshoot: float = 0.02,
             max_iter: int = 50, bounds: Bounds = None) -> Attack:
  """Untargeted minimal-L2 attack that steps to the nearest linearised decision boundary.

  The candidates are the `num_candidates` highest clean logits, the first being the predicted
  class k0. Each iteration linearises `f_k - f_k0` for every other candidate, moves `r_total` by
  the shortest step onto the nearest of those hyperplanes, and stops once the prediction (over all
  classes) leaves k0 or after `max_iter` iterations. The result is `x + (1 + overshoot) r_total`,
  clipped to `bounds`. On a linear classifier one iteration reaches the boundary exactly.

  Args:
    logits_fn: `(params, x) -> logits` for one example.
    num_candidates: classes considered, >= 2 (capped at the number of classes).
    overshoot: relative extra length of the final perturbation, >= 0.
    max_iter: maximum number of linearisation steps, >= 1.
    bounds: optional `(lo, hi)` box, applied at every iteration and at the end, widened to
      contain `x` (`core.project_bounds`): a sample outside it never moves further out and is
      not pulled in, so the perturbation stays the minimal one the attack found.

  Returns:
    `attack(params, x, y, key) -> x_adv`. Like the original, it moves away from the model's own
    prediction, so `y` and `key` are unused. Zero gradients give `x_adv = x`.

  Example:
    >>> attack = deepfool(logits_fn, num_candidates=5, overshoot=0.02, bounds=(-1.0, 1.0))
  """
  checks.integer("num_candidates", num_candidates, minimum=2)
  checks.nonnegative("overshoot", overshoot)
  checks.integer("max_iter", max_iter)
  clip = core.with_bounds(core.chain_projections(), bounds)

  def attack(params, x, y, key):
    del y, key
    clean = logits_fn(params, x)
    candidates = jax.lax.top_k(clean, min(num_candidates, clean.shape[-1]))[1]
    original = candidates[0]

    def candidate_logits(x_adv):
      logits = logits_fn(params, x_adv)
      return logits[candidates], logits

    jacobian = jax.jacrev(candidate_logits, has_aux=True)

    def step(r_total):
      grads, logits = jacobian(x + clip(r_total, x))
      w = grads[1:] - grads[:1]  # [K-1, *x.shape]: gradients of f_k - f_k0
      f = logits[candidates[1:]] - logits[original]
      w_norm = jax.vmap(core.l2_norm)(w)
      # Distance to each linearised boundary; a flat candidate (zero gradient) is never nearest.
      dist = jnp.where(w_norm > 0, jnp.abs(f) / jnp.where(w_norm > 0, w_norm, 1), jnp.inf)
      nearest = jnp.argmin(dist)
      length = jnp.where(jnp.isfinite(dist[nearest]), dist[nearest] + _STEP_SLACK, 0)
      unit = w[nearest] / jnp.where(w_norm[nearest] > 0, w_norm[nearest], 1)
      return r_total + length * unit

    def fooled(r_total):
      return jnp.argmax(logits_fn(params, x + clip(r_total, x))) != original

    def cond(carry):
      i, r_total = carry
      return (i < max_iter) & ~fooled(r_total)

    def body(carry):
      i, r_total = carry
      return i + 1, step(r_total)

    _, r_total = jax.lax.while_loop(cond, body, (jnp.array(0, jnp.int32), jnp.zeros_like(x)))
    return x + clip((1 + overshoot) * r_total, x)

  return attack
