"""Steepest-ascent attacks: FGSM, BIM, PGD, MI-FGSM and the audio paper's fixed-SNR FGSM.

Each is one expression over the parts of `core.py`. Every factory takes `bounds=(lo, hi)` (clip
`x_adv` into the box widened to contain `x`; None = unbounded) and an optional `snr_db` floor
that is enforced together with the norm ball, so audio budgets work with every attack. The budget
holds for any clean input: a sample outside the box only moves towards it, never by more than
the budget allows (`core.project_bounds`). The iterative ones take either a fixed `step_size` or
a `step_factor`: each step is then `step_factor * radius / num_steps`, the radius being the
budget's amplitude around each clip (`core.budget_radius`; Madry et al.'s 2.5 eps / steps with
`step_factor=2.5`), so that the step follows a budget that is traced or set by an SNR floor.
"""

from typing import Any, Callable, Optional

import optax

from soundjax import checks
from soundjax.attacks import core
from soundjax.types import Attack, Bounds, Init, LossFn


def _stepped(loss_fn: LossFn, *, direction: optax.GradientTransformation,
             start: Callable[[Any], Init], norm: str, eps: Any, snr_db: Any, bounds: Bounds,
             num_steps: int, step_size: Optional[float],
             step_factor: Optional[float]) -> Attack:
  """`core.iterative` with steps of `direction` scaled by `step_size`, or by `step_factor *
  radius / num_steps` with the radius of each clip's budget (`core.budget_radius`); `start(r)`
  is the init for a ball of radius `r` (the budget's radius under `step_factor`)."""
  if (step_size is None) == (step_factor is None):
    raise ValueError(f"give exactly one of step_size and step_factor, got step_size="
                     f"{step_size!r} and step_factor={step_factor!r}")
  project = core.budget(norm, eps, bounds, snr_db)
  if step_factor is None:
    checks.positive("step_size", step_size)
    return core.iterative(loss_fn, init=start(eps), step=optax.chain(direction,
                                                                      optax.scale(step_size)),
                          project=project, num_steps=num_steps)
  checks.positive("step_factor", step_factor)
  checks.integer("num_steps", num_steps)

  def attack(params, x, y, key):
    radius = core.budget_radius(x, norm=norm, eps=eps, snr_db=snr_db)
    step = optax.chain(direction, optax.scale(step_factor * radius / num_steps))
    return core.iterative(loss_fn, init=start(radius), step=step, project=project,
                          num_steps=num_steps)(params, x, y, key)

  return attack


def fgsm(loss_fn: LossFn, *, eps: float, norm: str = "linf", bounds: Bounds = None,
         snr_db: Optional[float] = None) -> Attack:
  """Fast gradient (sign) method: one step of size `eps` (Goodfellow et al., 2015).

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: radius of the `norm` ball, >= 0.
    norm: "linf" (sign of the gradient) or "l2" (unit-L2 gradient).
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = jax.jit(jax.vmap(fgsm(loss_fn, eps=0.01, bounds=(-1.0, 1.0)),
    ...                           in_axes=(None, 0, 0, 0)))
  """
  checks.nonnegative_or_traced("eps", eps)
  step = optax.chain(core.normalize(norm), optax.scale(eps))
  return core.iterative(loss_fn, init=core.init_zeros(), step=step,
                        project=core.budget(norm, eps, bounds, snr_db), num_steps=1)


def bim(loss_fn: LossFn, *, eps: float, step_size: Optional[float] = None, num_steps: int,
        norm: str = "linf", bounds: Bounds = None, snr_db: Optional[float] = None,
        step_factor: Optional[float] = None) -> Attack:
  """Basic iterative method: `num_steps` FGSM steps of `step_size`, projected onto the ball.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: radius of the `norm` ball, >= 0.
    step_size: size of each step, > 0 (or give `step_factor`).
    num_steps: number of steps, >= 1.
    norm: "linf" or "l2".
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.
    step_factor: each step is `step_factor * radius / num_steps`, the radius of each clip's
      budget (`core.budget_radius`), > 0; instead of `step_size`.

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = bim(loss_fn, eps=0.01, step_size=0.002, num_steps=10)
  """
  return _stepped(loss_fn, direction=core.normalize(norm), start=lambda r: core.init_zeros(),
                  norm=norm, eps=eps, snr_db=snr_db, bounds=bounds, num_steps=num_steps,
                  step_size=step_size, step_factor=step_factor)


def pgd(loss_fn: LossFn, *, eps: float, step_size: Optional[float] = None, num_steps: int,
        norm: str = "linf", random_start: bool = True, num_restarts: int = 1,
        bounds: Bounds = None, snr_db: Optional[float] = None,
        step_factor: Optional[float] = None) -> Attack:
  """Projected gradient descent (Madry et al., 2018): BIM from a uniform random start.

  Restarts run in parallel (vmapped over keys split from `key`) and the one of highest loss wins.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: radius of the `norm` ball, >= 0.
    step_size: size of each step, > 0 (or give `step_factor`).
    num_steps: number of steps, >= 1.
    norm: "linf" or "l2"; also the shape of the random start.
    random_start: start uniformly in the ball (of the budget's radius under `step_factor`);
      False starts at `x` (then equal to `bim`).
    num_restarts: number of random starts, >= 1.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.
    step_factor: each step is `step_factor * radius / num_steps`, the radius of each clip's
      budget (`core.budget_radius`), > 0; instead of `step_size` (Madry et al.: 2.5).

  Returns:
    `attack(params, x, y, key) -> x_adv`.

  Example:
    >>> attack = pgd(loss_fn, eps=0.01, step_size=0.0025, num_steps=20, num_restarts=4)
    >>> sweep = pgd(loss_fn, eps=2.0, snr_db=snr, step_factor=2.5, num_steps=10)  # traced snr
  """
  start = (lambda r: core.init_uniform(norm, r)) if random_start else (
      lambda r: core.init_zeros())
  attack = _stepped(loss_fn, direction=core.normalize(norm), start=start, norm=norm, eps=eps,
                    snr_db=snr_db, bounds=bounds, num_steps=num_steps, step_size=step_size,
                    step_factor=step_factor)
  return core.best_of(attack, loss_fn, num_restarts=num_restarts)


def mi_fgsm(loss_fn: LossFn, *, eps: float, step_size: Optional[float] = None, num_steps: int,
            decay: float = 1.0, bounds: Bounds = None, snr_db: Optional[float] = None,
            step_factor: Optional[float] = None) -> Attack:
  """Momentum iterative FGSM (Dong et al., 2018), Linf: sign of a decayed sum of L1-unit gradients.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: Linf radius, >= 0.
    step_size: size of each sign step, > 0 (the paper uses eps / num_steps; or give
      `step_factor`).
    num_steps: number of steps, >= 1.
    decay: momentum factor mu >= 0; 0 gives `bim`.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.
    step_factor: each step is `step_factor * radius / num_steps`, the Linf radius of each clip's
      budget (`core.budget_radius`), > 0; instead of `step_size`.

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = mi_fgsm(loss_fn, eps=0.01, step_size=0.001, num_steps=10, decay=1.0)
  """
  checks.nonnegative("decay", decay)
  direction = optax.chain(core.normalize_l1(), optax.trace(decay), optax.scale_by_sign())
  return _stepped(loss_fn, direction=direction, start=lambda r: core.init_zeros(), norm="linf",
                  eps=eps, snr_db=snr_db, bounds=bounds, num_steps=num_steps,
                  step_size=step_size, step_factor=step_factor)


def fgsm_snr(loss_fn: LossFn, *, snr_db: float, bounds: Bounds = None) -> Attack:
  """The paper's FGSM: the gradient sign scaled to RMS(x) / 10^(snr_db / 20), i.e. SNR = snr_db.

  The paper's code set `rms_ratio` with SNR = 20 log10(rms_ratio). Clipping to `bounds` (widened
  to contain `x`, as everywhere) only shrinks the perturbation, so it can only raise the SNR. A
  zero gradient leaves `x` unchanged.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    snr_db: SNR of the perturbation in dB.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = fgsm_snr(loss_fn, snr_db=20.0, bounds=(-1.0, 1.0))
  """
  return core.iterative(loss_fn, init=core.init_zeros(), step=optax.scale_by_sign(),
                        project=core.with_bounds(core.project_snr_sphere(snr_db), bounds),
                        num_steps=1)
