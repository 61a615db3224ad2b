"""Auto-PGD (Croce and Hein, 2020): PGD with momentum and a step size halved at checkpoints.

The semantics follow the AutoAttack reference (`autoattack/autopgd_base.py`, `APGDAttack` for
"Linf" and "L2"): start on the sphere of radius eps, step size 2 eps, momentum 0.75 from the
second step, and at each checkpoint halve the step (and return to the best point) when

  1. the loss rose on at most `rho` of the steps since the last checkpoint, or
  2. the step was not halved at the last checkpoint and the best loss has not risen since.

The result is the point of highest loss found (the reference's `best_loss=True` output), so an
`Attack` needs only a `LossFn`; restarts keep the one of highest loss. Given `is_adversarial`,
the result is instead the last iterate it accepts, if any (the reference's default output, its
`x_best_adv`), and restarts keep the first run that found one. The budget is `core.budget`
(ball, optional SNR floor, box), applied to both of the reference's projections.
`return_trace=True` also returns the run's losses (`ApgdTrace`): the loss trajectory that the
gradient-masking diagnostics of `ensemble.auto_attack` read.
"""

import math
from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from soundjax import checks
from soundjax.attacks import core
from soundjax.types import Attack, Bounds, Init, LossFn, Params


class ApgdTrace(NamedTuple):
  """One run (the restart kept): `losses[0]` at the start, `losses[k]` after step `k`
  (`[num_steps + 1]`); `best_loss`, their maximum; `found`, whether `is_adversarial` accepted an
  iterate (False without it)."""
  losses: jax.Array
  best_loss: jax.Array
  found: jax.Array


def apgd_checkpoints(num_steps: int) -> Tuple[int, ...]:
  """The checkpoints of `num_steps` steps: after how many steps the step size is checked.

  The reference's integer form of the paper's `p_0 = 0, p_1 = 0.22, p_{j+1} = p_j +
  max(p_j - p_{j-1} - 0.03, 0.06)`: the first period is `max(int(0.22 n), 1)` steps and each
  next one `max(int(0.03 n), 1)` shorter, down to `max(int(0.06 n), 1)`. For `n = 100` both give
  22, 41, 57, 70, 80, 87, 93, 99; for other `n` the reference rounds each period down.

  Example:
    >>> apgd_checkpoints(10)
    (2, 3, 4, 5, 6, 7, 8, 9, 10)
  """
  checks.integer("num_steps", num_steps)
  period = max(int(0.22 * num_steps), 1)
  shrink, shortest = max(int(0.03 * num_steps), 1), max(int(0.06 * num_steps), 1)
  points, point = [], period
  while point <= num_steps:
    points.append(point)
    period = max(period - shrink, shortest)
    point += period
  return tuple(points)


def _schedule(num_steps: int, rho: float) -> Tuple[np.ndarray, np.ndarray]:
  """Per step (0-based): whether a checkpoint follows it, and the most loss increases since the
  last checkpoint that still halve the step (condition 1: `increases <= rho * period`)."""
  is_check = np.zeros(num_steps, bool)
  most = np.zeros(num_steps, np.int32)
  previous = 0
  for point in apgd_checkpoints(num_steps):
    is_check[point - 1] = True
    # The reference compares a float32 count with `rho * period` rounded to float32.
    most[point - 1] = math.floor(np.float32(rho * (point - previous)))
    previous = point
  return is_check, most


def _init_on_sphere(norm: str, eps: float) -> Init:
  """The reference's start: a random direction of `norm` size exactly `eps` (Linf: uniform
  elements scaled so that the largest is `eps`; L2: a Gaussian direction)."""

  def init(x, key):
    if norm == "linf":
      t = jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0)
      return eps * t / jnp.max(jnp.abs(t))
    t = jax.random.normal(key, x.shape, x.dtype)
    return eps * t / core.l2_norm(t)

  return init


def apgd(loss_fn: LossFn, *, eps: float, num_steps: int, norm: str = "linf",
         num_restarts: int = 1, rho: float = 0.75, momentum: float = 0.75,
         random_start: bool = True, bounds: Bounds = None, snr_db: Optional[float] = None,
         unroll: Optional[bool] = None,
         is_adversarial: Optional[Callable[[Params, jax.Array, jax.Array], jax.Array]] = None,
         return_trace: bool = False) -> Attack:
  """Auto-PGD: steepest ascent with momentum and a step size that halves when progress stalls.

  Each step takes `z = P(x_k + eta * dir(grad))` and `x_{k+1} = P(x_k + a (z - x_k) + (1 - a)
  (x_k - x_{k-1}))` with `a = 1` on the first step and `momentum` after, `dir` the sign (Linf)
  or the unit-L2 gradient, `P` the budget, `eta = 2 eps` at first. At each checkpoint
  (`apgd_checkpoints`) `eta` halves and the search resumes from the best point (with its
  gradient) when the loss rose on at most `rho` of the steps since the last checkpoint, or when
  `eta` was kept there and the best loss has not risen since. Per example, with no host sync.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase (e.g. `losses.softmax_cross_entropy` or
      `losses.dlr_loss`).
    eps: radius of the `norm` ball, >= 0; may be a traced scalar (one compile for a sweep).
    num_steps: number of gradient steps, >= 1 (one more gradient is taken at the start).
    norm: "linf" or "l2".
    num_restarts: random starts (vmapped over keys split from `key`), >= 1; the first that
      found an adversarial iterate wins, else the highest loss.
    rho: the share of rising steps at or below which condition 1 halves the step, in [0, 1].
    momentum: the weight `a` of the new step, in [0, 1] (1 is no momentum).
    random_start: start on the sphere of radius eps (the reference); False starts at `x`.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.
    unroll: as `core.iterative`: True traces the steps straight, False as a `lax.fori_loop`,
      None decides at trace time (straight on CPU up to `core.MAX_UNROLLED_STEPS`).
    is_adversarial: optional `(params, x_adv, y) -> bool` (e.g. the prediction is not the
      label), evaluated at every iterate: the last it accepts is the result, if any.
    return_trace: also return the run's losses (`ApgdTrace`).

  Returns:
    `attack(params, x, y, key) -> x_adv`: the last iterate `is_adversarial` accepted, else the
    point of highest loss found; with `return_trace` the pair `(x_adv, ApgdTrace)`.

  Example:
    >>> attack = jax.jit(jax.vmap(apgd(loss_fn, eps=0.01, num_steps=100, bounds=(-1.0, 1.0)),
    ...                           in_axes=(None, 0, 0, 0)))
  """
  checks.one_of("norm", norm, core.NORMS)
  checks.nonnegative_or_traced("eps", eps)
  checks.integer("num_steps", num_steps)
  checks.fraction("rho", rho)
  checks.fraction("momentum", momentum)
  checks.integer("num_restarts", num_restarts)
  if is_adversarial is not None:
    checks.function("is_adversarial", is_adversarial)
  accepts = is_adversarial or (lambda params, x, y: False)
  fooled = lambda params, x, y: jnp.asarray(accepts(params, x, y), bool)
  project = core.budget(norm, eps, bounds, snr_db)
  direction = core.normalize(norm)
  init = _init_on_sphere(norm, eps) if random_start else core.init_zeros()
  is_check, most_increases = (jnp.asarray(table) for table in _schedule(num_steps, rho))

  def attack(params, x, y, key):
    value_and_grad = jax.value_and_grad(lambda delta: loss_fn(params, x + delta, y))

    def body(i, state):
      (delta, previous, grad, last_loss, step, best, best_grad, best_loss, increases,
       loss_at_check, halved_at_check, losses, adv, found) = state
      weight = jnp.where(i == 0, 1.0, momentum)
      z = project(delta + step * direction.update(grad, None)[0], x)
      new = project(delta + weight * (z - delta) + (1 - weight) * (delta - previous), x)
      loss, new_grad = value_and_grad(new)
      hit = fooled(params, x + new, y)
      increases = increases + (loss > last_loss)
      better = loss > best_loss
      best, best_grad, best_loss = (jnp.where(better, a, b) for a, b in
                                    ((new, best), (new_grad, best_grad), (loss, best_loss)))
      check = is_check[i]
      halve = check & ((increases <= most_increases[i])
                       | (~halved_at_check & (loss_at_check >= best_loss)))
      return (jnp.where(halve, best, new), delta, jnp.where(halve, best_grad, new_grad), loss,
              jnp.where(halve, step / 2, step), best, best_grad, best_loss,
              jnp.where(check, 0, increases), jnp.where(check, best_loss, loss_at_check),
              jnp.where(check, halve, halved_at_check), losses.at[i + 1].set(loss),
              jnp.where(hit, new, adv), found | hit)

    delta = project(init(x, key), x)
    loss, grad = value_and_grad(delta)
    # The first step's rise is counted against the start's loss (the reference compares it with
    # an unwritten 0 of its buffer). The state starts "halved at the last checkpoint", as the
    # reference's, so that condition 2 cannot fire at the first checkpoint.
    losses = jnp.zeros(num_steps + 1, loss.dtype).at[0].set(loss)
    state = (delta, delta, grad, loss, 2.0 * jnp.asarray(eps, x.dtype), delta, grad, loss,
             jnp.int32(0), loss, jnp.bool_(True), losses, delta, fooled(params, x + delta, y))
    state = core.run_steps(body, state, num_steps, unroll)
    best, best_loss, losses, adv, found = (state[k] for k in (5, 7, 11, 12, 13))
    return x + jnp.where(found, adv, best), ApgdTrace(losses, best_loss, found)

  def restarted(params, x, y, key):
    runs = jax.vmap(attack, in_axes=(None, None, None, 0))(
        params, x, y, jax.random.split(key, num_restarts))
    # argmax takes the first of equal scores: the first run that found an adversarial iterate.
    keep = jnp.argmax(jnp.where(runs[1].found, jnp.inf, runs[1].best_loss))
    return jax.tree.map(lambda a: a[keep], runs)

  run = attack if num_restarts == 1 else restarted
  return run if return_trace else lambda *args: run(*args)[0]
