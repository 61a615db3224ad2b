"""Steepest-ascent attacks: FGSM, BIM, PGD, MI-FGSM and the audio paper's fixed-SNR FGSM.

Each is one expression over the parts of `core.py`. Every factory takes `bounds=(lo, hi)` (clip
`x_adv` into the box widened to contain `x`; None = unbounded) and an optional `snr_db` floor
that is enforced together with the norm ball, so audio budgets work with every attack. The budget
holds for any clean input: a sample outside the box only moves towards it, never by more than
the budget allows (`core.project_bounds`).
"""

from typing import Optional

import optax

from soundjax import checks
from soundjax.attacks import core
from soundjax.types import Attack, Bounds, LossFn


def _steepest(norm: str, step_size: float) -> optax.GradientTransformation:
  """A step of size `step_size` in the steepest-ascent direction of `norm`."""
  return optax.chain(core.normalize(norm), optax.scale(step_size))


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
  return core.iterative(loss_fn, init=core.init_zeros(), step=_steepest(norm, eps),
                        project=core.budget(norm, eps, bounds, snr_db), num_steps=1)


def bim(loss_fn: LossFn, *, eps: float, step_size: float, num_steps: int, norm: str = "linf",
        bounds: Bounds = None, snr_db: Optional[float] = None) -> Attack:
  """Basic iterative method: `num_steps` FGSM steps of `step_size`, projected onto the ball.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: radius of the `norm` ball, >= 0.
    step_size: size of each step, > 0.
    num_steps: number of steps, >= 1.
    norm: "linf" or "l2".
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = bim(loss_fn, eps=0.01, step_size=0.002, num_steps=10)
  """
  checks.positive("step_size", step_size)
  return core.iterative(loss_fn, init=core.init_zeros(), step=_steepest(norm, step_size),
                        project=core.budget(norm, eps, bounds, snr_db), num_steps=num_steps)


def pgd(loss_fn: LossFn, *, eps: float, step_size: float, num_steps: int, norm: str = "linf",
        random_start: bool = True, num_restarts: int = 1, bounds: Bounds = None,
        snr_db: Optional[float] = None) -> Attack:
  """Projected gradient descent (Madry et al., 2018): BIM from a uniform random start.

  Restarts run in parallel (vmapped over keys split from `key`) and the one of highest loss wins.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: radius of the `norm` ball, >= 0.
    step_size: size of each step, > 0.
    num_steps: number of steps, >= 1.
    norm: "linf" or "l2"; also the shape of the random start.
    random_start: start uniformly in the ball; False starts at `x` (then equal to `bim`).
    num_restarts: number of random starts, >= 1.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv`.

  Example:
    >>> attack = pgd(loss_fn, eps=0.01, step_size=0.0025, num_steps=20, num_restarts=4)
  """
  checks.positive("step_size", step_size)
  init = core.init_uniform(norm, eps) if random_start else core.init_zeros()
  attack = core.iterative(loss_fn, init=init, step=_steepest(norm, step_size),
                          project=core.budget(norm, eps, bounds, snr_db), num_steps=num_steps)
  return core.best_of(attack, loss_fn, num_restarts=num_restarts)


def mi_fgsm(loss_fn: LossFn, *, eps: float, step_size: float, num_steps: int, decay: float = 1.0,
            bounds: Bounds = None, snr_db: Optional[float] = None) -> Attack:
  """Momentum iterative FGSM (Dong et al., 2018), Linf: sign of a decayed sum of L1-unit gradients.

  Args:
    loss_fn: `(params, x, y) -> scalar` to increase.
    eps: Linf radius, >= 0.
    step_size: size of each sign step, > 0 (the paper uses eps / num_steps).
    num_steps: number of steps, >= 1.
    decay: momentum factor mu >= 0; 0 gives `bim`.
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`).
    snr_db: optional floor on the SNR of the perturbation, in dB.

  Returns:
    `attack(params, x, y, key) -> x_adv`; `key` is unused.

  Example:
    >>> attack = mi_fgsm(loss_fn, eps=0.01, step_size=0.001, num_steps=10, decay=1.0)
  """
  checks.positive("step_size", step_size)
  checks.nonnegative("decay", decay)
  step = optax.chain(core.normalize_l1(), optax.trace(decay), optax.scale_by_sign(),
                     optax.scale(step_size))
  return core.iterative(loss_fn, init=core.init_zeros(), step=step,
                        project=core.budget("linf", eps, bounds, snr_db), num_steps=num_steps)


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
