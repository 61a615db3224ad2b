"""Attacks by name from the adversarial experiment's config: each of `config.attacks`, the
AutoAttack ensemble, and the robustness curve's attacks, whose step follows the budget.

Step rules of the curve (`config.robustness.step_rule`; `STEP_RULES`):
- "madry": each step is `step_factor * radius / num_steps` (Madry et al., 2018: 2.5 eps /
  steps, so that the walk can cross the whole ball from any start and still move along its
  boundary), where `radius` is the budget's amplitude around the clip in units of the attack's
  norm (`attacks.core.budget_radius`); PGD also starts uniformly in the ball of that radius. The
  attacks whose factories take a `step_factor` (`STEERED`) get it; the others (FGSM's step is its
  budget) run as configured.
- "fixed": the attack's own `step_size`, whatever the budget (the attack as `attacks.ATTACKS`
  builds it).
"""

import inspect
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import ml_collections

from soundjax import attacks, losses
from soundjax.types import Attack, Bounds, LogitsFn, LossFn

# Budgets the attacks take as traced scalars (a curve over one compiles once per model), and the
# sign of their strength: a larger eps is a larger budget, a larger SNR a smaller one.
BUDGETS = {"eps": 1.0, "snr_db": -1.0}
STEP_RULES = ("madry", "fixed")
# The attacks of `attacks.ATTACKS` whose step can follow the budget (their factories take a
# `step_factor`), built by `steered` under "madry".
STEERED = tuple(name for name, factory in attacks.ATTACKS.items()
                if "step_factor" in inspect.signature(factory).parameters)
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


def steered(name: str, loss_fn: LossFn, kwargs: Mapping[str, Any], *, bounds: Bounds,
            step_factor: float) -> Attack:
  """Attack `name` of `STEERED` with steps of `step_factor * radius / num_steps`: the library's
  factory with `step_factor` (`attacks.gradient`), the budget's radius per clip, so that `eps`
  or `snr_db` may be traced and an SNR budget gives each clip its own amplitude.

  Args:
    name: "pgd", "bim" or "mi_fgsm".
    loss_fn: `(params, x, y) -> scalar` to increase.
    kwargs: the factory's keyword arguments but `bounds` (its own `step_size` or
      `step_factor` is replaced by `step_factor`).
    bounds: `(lo, hi)` box for `x_adv` (widened to contain `x`), or None.
    step_factor: the step in units of `radius / num_steps`, > 0 (Madry et al.: 2.5).

  Example:
    >>> attack = steered("pgd", loss_fn, dict(eps=2.0, snr_db=20.0, num_steps=10),
    ...                  bounds=(-1.0, 1.0), step_factor=2.5)
  """
  kwargs = {key: value for key, value in kwargs.items()
            if key not in ("step_size", "step_factor")}
  return attacks.ATTACKS[name](loss_fn, **kwargs, bounds=bounds, step_factor=step_factor)


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
