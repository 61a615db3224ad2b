"""The robustness curve: accuracy on the attacked clips as one parameter of one untargeted attack
varies (its step following the budget: `builders.curve_attack`), and the curves the sanity
checks (`sanity.py`) hold it against: the one-step attack (`builders.ONE_STEP`) at the same
budgets and the curve's attack with twice its steps.

A budget (`builders.BUDGETS`) is a traced argument of one compiled attack, so each curve compiles
once per model; every level uses the same key per clip (common random numbers: the curve's steps
are not noise between random starts).
"""

from typing import Any, Callable, Dict, Iterator, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from soundjax import attacks
from soundjax.experiments.adversarial import builders, sanity
from soundjax.experiments.adversarial.evaluate import Victim, finite_or_clean, mean
from soundjax.parallel import chunked
from soundjax.types import Attack


def sweep(make: Callable[[Any], Attack]) -> Callable:
  """`jit(vmap(make(level)))` with the level a traced scalar: one compile for every level.

  Returns:
    `apply(variables, level, x, y, keys) -> outputs`, batched over `x`, `y` and `keys`.
  """
  return jax.jit(lambda variables, level, x, y, keys: jax.vmap(
      make(level), in_axes=(None, 0, 0, 0))(variables, x, y, keys))


def over_levels(config: ml_collections.ConfigDict, victim: Victim, make: Callable,
                x: np.ndarray, y: np.ndarray, key: jax.Array, progress: tqdm.tqdm,
                label: str) -> Iterator[Any]:
  """The outputs of `make(value)` (a per-example attack) on every clip at each level of
  `config.robustness.levels`, with the same key per clip at every level.

  A budget (`builders.BUDGETS`) is an argument of one compiled attack; any other param (a number
  of steps, say) builds and compiles the attack at each level.
  """
  curve, variables = config.robustness, victim.result.state.variables
  keys = jax.random.split(key, len(x))
  batched = sweep(make)
  for value in curve.levels:
    progress.set_postfix_str(f"{victim.name} {label} {curve.param}={value}")
    if curve.param in builders.BUDGETS:
      apply = chunked(batched, config.attack_batch_size, variables, jnp.float32(value))
    else:
      apply = chunked(jax.jit(jax.vmap(make(value), in_axes=(None, 0, 0, 0))),
                      config.attack_batch_size, variables)
    yield apply(x, y, keys)
    progress.update()


def robustness_curves(config: ml_collections.ConfigDict, victim: Victim, x: np.ndarray,
                      y: np.ndarray, key: jax.Array,
                      progress: tqdm.tqdm) -> Dict[str, List[Optional[float]]]:
  """Accuracy on the attacked clips at each of `config.robustness.levels`: under the curve
  attack ("accuracy") and for each of `builders.extra_curves(config)`, all with the same keys."""
  task = victim.result.task
  labels = {"accuracy": config.robustness.attack, "one_step": builders.ONE_STEP,
            "double_steps": f"{config.robustness.attack} x{builders.STEPS_MULTIPLE} steps"}
  curves = {}
  for name, make in builders.curve_makers(config, task.logits_fn(), task.loss_fn()).items():
    accuracy = []
    for x_adv in over_levels(config, victim, make, x, y, key, progress, labels[name]):
      # A non-finite example is scored as its clean clip, as in the attack table.
      x_adv, _ = finite_or_clean(x_adv, x)
      accuracy.append(mean(np.argmax(victim.predict(x_adv), axis=-1) == y))
    curves[name] = accuracy
  return curves


def sanity_checks(config: ml_collections.ConfigDict,
                  curves: Dict[str, Dict[str, List[Optional[float]]]]) -> Dict[str, Any]:
  """`results.json`'s `robustness.sanity`: the rules with their thresholds, and per model the
  verdict and figures of each check of `sanity.CHECKS` on `curves` (per model, as
  `robustness_curves` returns them)."""
  curve = config.robustness
  thresholds = curve.sanity.to_dict()
  missing = builders.extra_curves(config)[1]
  per_model = {}
  for model, found in curves.items():
    if curve.param not in builders.BUDGETS:
      per_model[model] = {check: sanity.not_applicable(missing) for check in sanity.CHECKS}
      continue
    per_model[model] = sanity.check_curves(
        curve.levels, found["accuracy"], larger_is_stronger=builders.BUDGETS[curve.param] > 0,
        one_step=found.get("one_step"), doubled=found.get("double_steps"), missing=missing,
        **thresholds)
  return {"rules": sanity.rules(**thresholds), "models": per_model}


def step(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  """How the curve attack steps: the rule, and its factor ("madry", for an attack of
  `builders.STEERED`) or its own step size or factor ("fixed"), and its number of steps (None
  where it takes neither)."""
  curve = config.robustness
  kwargs = builders.curve_kwargs(config)
  figures = {"rule": curve.step_rule, "num_steps": builders.curve_steps(config)}
  if config.attacks[curve.attack].attack in builders.STEERED:
    figures.update({"factor": curve.step_factor} if curve.step_rule == "madry" else
                   {key: kwargs[key] for key in ("step_size", "step_factor") if key in kwargs})
  return figures


def results(config: ml_collections.ConfigDict,
            found: Dict[str, Dict[str, List[Optional[float]]]]) -> Dict[str, Any]:
  """`results.json`'s `robustness` (see `evaluate.py`) from the curves found per model."""
  curve = config.robustness
  figures = {"attack": curve.attack, "param": curve.param, "levels": list(curve.levels),
             "kwargs": builders.as_dict(curve.get("kwargs")), "step": step(config),
             "accuracy": {model: c["accuracy"] for model, c in found.items()}}
  names = builders.extra_curves(config)[0]
  if "one_step" in names:
    figures["one_step"] = {"attack": builders.ONE_STEP,
                           "accuracy": {model: c["one_step"] for model, c in found.items()}}
  if "double_steps" in names:
    figures["double_steps"] = {"num_steps": builders.double_steps(config),
                               "accuracy": {model: c["double_steps"] for model, c in found.items()}}
  figures["sanity"] = sanity_checks(config, found)
  return figures


def auto_attack_curve(config: ml_collections.ConfigDict, victim: Victim, x: np.ndarray,
                      y: np.ndarray, key: jax.Array,
                      progress: tqdm.tqdm) -> List[Dict[str, Optional[float]]]:
  """The AutoAttack ensemble (`config.auto_attack`) at each level of the robustness curve:
  `attacks.robust_accuracy`'s figures (robust accuracy, per component, and the gradient-masking
  diagnostics) per level, null where undefined."""
  curve, spec, task = config.robustness, config.auto_attack, victim.result.task

  def ensemble_at(value):
    return builders.build_auto_attack(spec, task.logits_fn(), task.loss_fn(), config.bounds,
                                      **{curve.param: value})

  return [{name: float(value) if np.isfinite(value) else None
           for name, value in attacks.robust_accuracy(outcome).items()}
          for outcome in over_levels(config, victim, ensemble_at, x, y, key, progress,
                                     "auto_attack")]
