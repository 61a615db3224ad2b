"""Attacks by name from the adversarial experiment's config: each of `config.attacks`, the
AutoAttack ensemble, and the robustness curve's attacks, whose step follows the budget.

Step rules of the curve (`config.robustness.step_rule`; `STEP_RULES`):
- "madry": each step is `step_factor * radius / num_steps` (Madry et al., 2018: 2.5 eps /
  steps, so that the walk can cross the whole ball from any start and still move along its
  boundary), where `radius` is the budget's amplitude around the clip in units of the attack's
  norm (`radius`); PGD also starts uniformly in the ball of that radius. The attacks that take a
  step size (`STEERED`) are built here from the parts of `attacks.gradient` with that step; the
  others (FGSM's step is its budget) run as configured.
- "fixed": the attack's own `step_size`, whatever the budget (the attack as `attacks.ATTACKS`
  builds it).
"""

import inspect
import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from soundjax import attacks, checks, losses
from soundjax.types import Attack, Bounds, LogitsFn, LossFn

# Budgets the attacks take as traced scalars (a curve over one compiles once per model), and the
# sign of their strength: a larger eps is a larger budget, a larger SNR a smaller one.
BUDGETS = {"eps": 1.0, "snr_db": -1.0}
STEP_RULES = ("madry", "fixed")
# The attacks of `attacks.ATTACKS` that take a `step_size`, rebuilt by `steered` under "madry":
# their factories take the step as a number, and here it depends on the (traced) budget.
STEERED = ("pgd", "bim", "mi_fgsm")
# The one-step attack of sanity check (c): one step of the budget in the steepest direction of
# the curve attack's norm, projected as it is (for an SNR budget: the paper's fixed-SNR FGSM).
ONE_STEP = "fgsm"
# The curves beside the curve attack's own ("accuracy"), for sanity checks (c) and (d): the
# one-step attack, and the curve attack with `STEPS_MULTIPLE` times its steps.
EXTRA_CURVES = ("one_step", "double_steps")
STEPS_MULTIPLE = 2


def as_dict(value: Any) -> Dict[str, Any]:
  """A ConfigDict field as a plain dict (an absent field as {})."""
  return value.to_dict() if isinstance(value, ml_collections.ConfigDict) else dict(value or {})


def build_attack(spec: ml_collections.ConfigDict, logits_fn: LogitsFn, loss_fn: LossFn,
                 bounds: Sequence[float], **overrides: Any) -> attacks.Attack:
  """The attack `spec` names, closed over the loss or logits its factory takes.

  Args:
    spec: `attack` (a name in `attacks.ATTACKS`), `targeted` and `kwargs` of the factory.
    logits_fn: per-example logits, for factories whose first argument is `logits_fn`.
    loss_fn: per-example loss, for factories whose first argument is `loss_fn` (negated by
      `attacks.targeted` when `spec.targeted`).
    bounds: `(lo, hi)` passed to factories that take `bounds`.
    **overrides: keyword arguments replacing those of `spec.kwargs` (e.g. `eps` of a curve).

  Returns:
    `attack(params, x, y, key) -> x_adv`, where `y` is the target of a targeted attack.
  """
  factory = attacks.ATTACKS[spec.attack]
  parameters = inspect.signature(factory).parameters
  kwargs = {**as_dict(spec.get("kwargs")), **overrides}
  if "bounds" in parameters:
    kwargs["bounds"] = tuple(bounds)
  if "targeted" in parameters:
    kwargs["targeted"] = spec.get("targeted", False)
  first = next(iter(parameters.values()))
  if first.kind is inspect.Parameter.KEYWORD_ONLY:  # e.g. white noise needs no model
    return factory(**kwargs)
  if first.name == "loss_fn":
    return factory(attacks.targeted(loss_fn) if spec.get("targeted", False) else loss_fn,
                   **kwargs)
  return factory(logits_fn, **kwargs)


def build_auto_attack(spec: ml_collections.ConfigDict, logits_fn: LogitsFn, loss_fn: LossFn,
                      bounds: Sequence[float], **overrides: Any):
  """`attacks.auto_attack` as `config.auto_attack` sets it, APGD-CE on the victim's `loss_fn`.

  Args:
    spec: `norm` and `kwargs` of `attacks.auto_attack`.
    logits_fn: per-example logits (APGD-T's targeted DLR loss, FAB-T, Square's queries).
    loss_fn: per-example cross-entropy (APGD-CE and the gradient diagnostics).
    bounds: `(lo, hi)` of every component.
    **overrides: keyword arguments replacing those of `spec.kwargs` (the curve's budget).

  Returns:
    `ensemble(params, x, y, key) -> attacks.AutoAttackOutcome`.
  """
  kwargs = {**as_dict(spec.get("kwargs")), **overrides}
  return attacks.auto_attack(logits_fn, ce_loss=loss_fn,
                             dlr_targeted_loss=losses.dlr_targeted_loss(logits_fn),
                             norm=spec.norm, bounds=tuple(bounds), **kwargs)


def takes(attack: str, *names: str) -> bool:
  """Whether the factory `attacks.ATTACKS[attack]` takes every keyword of `names`."""
  return set(names) <= set(inspect.signature(attacks.ATTACKS[attack]).parameters)


def radius(x: jax.Array, *, norm: str, eps: Any, snr_db: Any = None) -> jax.Array:
  """The amplitude of the budget `(eps, snr_db)` around clip `x`, in units of `norm`.

  `attacks.budget` keeps `delta` in the `norm` ball of radius `eps` and, with `snr_db`, scales it
  down until `RMS(delta) <= RMS(x) 10^(-snr_db / 20)` (`attacks.core.snr_amplitude`: the SNR as
  the paper measures it, the power of `x` over that of `delta`). A sign step moves every sample
  by the same amount `a`, so its RMS is `a`: in Linf units the SNR floor's amplitude is that RMS
  itself; in L2 units it is the RMS times `sqrt(x.size)`. The budget's radius is the smaller of
  the ball's and the floor's. `eps` and `snr_db` may be traced.
  """
  eps = jnp.asarray(eps, x.dtype)
  if snr_db is None:
    return eps
  floor = attacks.core.snr_amplitude(x, snr_db).astype(x.dtype)
  return jnp.minimum(eps, floor * math.sqrt(x.size) if norm == "l2" else floor)


def _arguments(name: str, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
  """The keyword arguments of factory `name` with its defaults filled in; a TypeError names an
  unknown or missing one. `step_size` may be absent (the rule sets it)."""
  bound = inspect.signature(attacks.ATTACKS[name]).bind(None, **{"step_size": None, **kwargs})
  bound.apply_defaults()
  return dict(list(bound.arguments.items())[1:])


def steered(name: str, loss_fn: LossFn, kwargs: Mapping[str, Any], *, bounds: Bounds,
            step_factor: float) -> Attack:
  """Attack `name` of `STEERED` whose step is `step_factor * radius(x) / num_steps`.

  The same expression over `attacks`' parts as `attacks.pgd`, `bim` or `mi_fgsm`, but with the
  step (and PGD's uniform start) computed from the clip's budget inside the attack, so that
  `eps` or `snr_db` may be traced and an SNR budget gives each clip its own amplitude.

  Args:
    name: "pgd", "bim" or "mi_fgsm".
    loss_fn: `(params, x, y) -> scalar` to increase.
    kwargs: the factory's keyword arguments but `bounds` (`step_size` is ignored).
    bounds: `(lo, hi)` box for `x_adv` (widened to contain `x`), or None.
    step_factor: the step in units of `radius / num_steps`, > 0 (Madry et al.: 2.5).

  Returns:
    `attack(params, x, y, key) -> x_adv`.

  Example:
    >>> attack = steered("pgd", loss_fn, dict(eps=2.0, snr_db=20.0, num_steps=10),
    ...                  bounds=(-1.0, 1.0), step_factor=2.5)
  """
  checks.positive("step_factor", step_factor)
  args = _arguments(name, kwargs)
  # Built once for the library's checks of the other arguments (the step here replaces its own).
  attacks.ATTACKS[name](loss_fn, **{**args, "step_size": 1.0, "bounds": bounds})
  norm, eps, snr_db = args.get("norm", "linf"), args["eps"], args["snr_db"]
  num_steps = checks.integer("num_steps", args["num_steps"])
  project = attacks.budget(norm, eps, bounds, snr_db)

  def attack(params, x, y, key):
    size = radius(x, norm=norm, eps=eps, snr_db=snr_db)
    scale = optax.scale(step_factor * size / num_steps)
    if name == "mi_fgsm":
      step = optax.chain(attacks.normalize_l1(), optax.trace(args["decay"]),
                         optax.scale_by_sign(), scale)
    else:
      step = optax.chain(attacks.normalize(norm), scale)
    start = name == "pgd" and args["random_start"]
    init = attacks.init_uniform(norm, size) if start else attacks.init_zeros()
    return attacks.iterative(loss_fn, init=init, step=step, project=project,
                             num_steps=num_steps)(params, x, y, key)

  if name == "pgd":
    return attacks.best_of(attack, loss_fn, num_restarts=args["num_restarts"])
  return attack


def curve_kwargs(config: ml_collections.ConfigDict, **overrides: Any) -> Dict[str, Any]:
  """The curve attack's keyword arguments: its `config.attacks` entry's, then
  `config.robustness.kwargs`, then `overrides` (a level, a number of steps)."""
  spec = config.attacks[config.robustness.attack]
  return {**as_dict(spec.get("kwargs")), **as_dict(config.robustness.get("kwargs")),
          **overrides}


def curve_attack(config: ml_collections.ConfigDict, logits_fn: LogitsFn, loss_fn: LossFn,
                 **overrides: Any) -> Attack:
  """The robustness curve's attack under `config.robustness.step_rule`, with `overrides` of its
  keyword arguments (`curve_kwargs`)."""
  curve = config.robustness
  name = config.attacks[curve.attack].attack
  kwargs = curve_kwargs(config, **overrides)
  if curve.step_rule == "madry" and name in STEERED:
    return steered(name, loss_fn, kwargs, bounds=tuple(config.bounds),
                   step_factor=curve.step_factor)
  return build_attack(ml_collections.ConfigDict({"attack": name, "kwargs": kwargs}), logits_fn,
                      loss_fn, config.bounds)


def one_step_attack(config: ml_collections.ConfigDict, logits_fn: LogitsFn, loss_fn: LossFn,
                    **overrides: Any) -> Attack:
  """`ONE_STEP` with the curve attack's budget, norm and bounds (and `overrides`)."""
  kwargs = {name: value for name, value in curve_kwargs(config, **overrides).items()
            if takes(ONE_STEP, name)}
  return build_attack(ml_collections.ConfigDict({"attack": ONE_STEP, "kwargs": kwargs}),
                      logits_fn, loss_fn, config.bounds)


def extra_curves(config: ml_collections.ConfigDict) -> Tuple[Tuple[str, ...], str]:
  """The `EXTRA_CURVES` this config's sanity checks can use, and why there are none if so: they
  need a budget curve (`BUDGETS`) of an iterative attack (one that takes `num_steps`)."""
  curve = config.robustness
  attack = config.attacks[curve.attack].attack
  if curve.param not in BUDGETS:
    return (), f"the curve is over {curve.param}, not a budget ({', '.join(BUDGETS)})"
  if not takes(attack, "num_steps"):
    return (), f"the curve attack ({attack}) takes no steps"
  return EXTRA_CURVES, ""


def curve_steps(config: ml_collections.ConfigDict) -> Optional[int]:
  """The curve attack's `num_steps` (its factory's default if unset); None if it takes none."""
  attack = config.attacks[config.robustness.attack].attack
  if not takes(attack, "num_steps"):
    return None
  default = inspect.signature(attacks.ATTACKS[attack]).parameters["num_steps"].default
  return curve_kwargs(config).get("num_steps", default)


def double_steps(config: ml_collections.ConfigDict) -> int:
  """The number of steps of the "double_steps" curve: `STEPS_MULTIPLE` times the curve's."""
  return STEPS_MULTIPLE * int(curve_steps(config))


def curve_makers(config: ml_collections.ConfigDict, logits_fn: LogitsFn,
                 loss_fn: LossFn) -> Dict[str, Callable[[Any], Attack]]:
  """`make(level) -> attack` of each curve: the curve attack's ("accuracy") and those of
  `extra_curves(config)`, the level replacing `config.robustness.param`."""
  param = config.robustness.param
  makers = {"accuracy": lambda value: curve_attack(config, logits_fn, loss_fn, **{param: value})}
  names = extra_curves(config)[0]
  if "one_step" in names:
    makers["one_step"] = lambda value: one_step_attack(config, logits_fn, loss_fn,
                                                       **{param: value})
  if "double_steps" in names:
    makers["double_steps"] = lambda value: curve_attack(
        config, logits_fn, loss_fn, num_steps=double_steps(config), **{param: value})
  return makers
