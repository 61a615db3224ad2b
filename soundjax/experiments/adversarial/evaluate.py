"""Victims and what is measured on them: training or restoring a victim, attacking it, the
robustness curve and the transfer matrix.

Conventions of `results.json` (all rates are fractions in [0, 1], null where undefined):
- `success_rate`: over all attacked examples; untargeted: argmax != true label; targeted:
  argmax == target. `success_rate_clean_correct`: the same among clips the model classified
  correctly before the attack. `confident_success_rate`: the paper's thresholds, p(true label)
  < 1 / num_classes (untargeted) or p(target) >= `config.targeted_confidence` (targeted).
- `snr_db_*`, `linf_mean`, `l2_mean`: sizes on the waveform of the examples the attack MADE
  adversarial (successful now, not before), as the paper reports the SNR of the examples it
  made; a clip misclassified already has nothing to measure.
- `p_true_before/after`: mean probability of the true class on the clean / adversarial input;
  `p_adv_class_after`: mean probability of the class predicted after the attack;
  `p_target_after`: mean probability of the target (targeted attacks only).
- `nonfinite_examples`: adversarial examples with a NaN or infinity, counted as failed attacks
  (the clean clip is scored in their place); nonzero means a numerical problem to look into.
- `robustness.auto_attack` (with `config.auto_attack.enabled`): per model and level of the
  curve, `attacks.robust_accuracy` of the ensemble on all attacked clips: `robust`, `clean`,
  the robust accuracy after each component, and the diagnostics `grad_zero_share`,
  `grad_nonfinite_share`, `loss_gain`, `no_gain_share`, `square_only`.
"""

import dataclasses
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from soundjax import attacks, training
from soundjax.experiments.adversarial import setup
from soundjax.metrics import classification, perturbation
from soundjax.parallel import chunked

TRANSFER_RULE = (
    "matrix[row][column]: adversarial clips crafted by config.main_attack on the row model, "
    "scored on the column model; the fraction of the clips the column model classified "
    "correctly when clean that it misclassifies after the attack (null if it classified none "
    "correctly). The diagonal is the white-box success rate on those clips.")


@dataclasses.dataclass
class Victim:
  """A trained model, its batched probabilities and its probabilities on the clean clips."""
  name: str
  result: training.TrainResult
  predict: Callable[[np.ndarray], np.ndarray]
  clean_probs: np.ndarray

  def attack(self, attack, x: np.ndarray, y: np.ndarray, key: jax.Array,
             batch_size: int) -> Tuple[np.ndarray, int]:
    """`attack` applied to every clip, vmapped and jitted, one key per clip.

    Returns:
      The adversarial clips, where any with a NaN or infinity is replaced by its clean clip
      (a failed attack), and the number of those.
    """
    batched = jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))
    x_adv = chunked(batched, batch_size, self.result.state.variables)(
        x, y, jax.random.split(key, len(x)))
    return finite_or_clean(x_adv, x)


def finite_or_clean(x_adv: np.ndarray, x: np.ndarray) -> Tuple[np.ndarray, int]:
  """The adversarial clips with any that holds a NaN or infinity replaced by its clean clip (a
  failed attack), and the number of those."""
  finite = np.all(np.isfinite(x_adv), axis=-1)
  return np.where(finite[:, None], x_adv, x), int(np.sum(~finite))


def train_victim(config: ml_collections.ConfigDict, name: str, workdir: str, builder,
                 x: np.ndarray) -> Victim:
  """Trains victim `name` in `workdir/models/<name>` (restoring it if trained already)."""
  result = training.train(setup.victim_config(config, name), os.path.join(workdir, "models", name),
                       builder=builder)
  logits = jax.jit(jax.vmap(result.task.logits_fn(), in_axes=(None, 0)))
  predict = chunked(lambda variables, batch: classification.softmax(logits(variables, batch)),
                    config.attack_batch_size, result.state.variables)
  return Victim(name=name, result=result, predict=predict, clean_probs=predict(x))


def mean(values: np.ndarray, mask: Optional[np.ndarray] = None,
          reduce: Callable = np.mean) -> Optional[float]:
  values = np.asarray(values, np.float64)
  values = values if mask is None else values[mask]
  return float(reduce(values)) if values.size else None


def attack_metrics(x: np.ndarray, x_adv: np.ndarray, labels: np.ndarray,
                   targets: Optional[np.ndarray], clean_probs: np.ndarray,
                   adv_probs: np.ndarray, *, targeted_confidence: float) -> Dict[str, Any]:
  """The figures of one model x attack (see the module docstring), all vectorised."""
  if targets is None:
    success, before = (classification.untargeted_success(probs, labels)
                       for probs in (adv_probs, clean_probs))
    confident = classification.untargeted_success(adv_probs, labels, 1.0 / adv_probs.shape[-1])
  else:
    success, before = (classification.targeted_success(probs, targets)
                       for probs in (adv_probs, clean_probs))
    confident = classification.targeted_success(adv_probs, targets, targeted_confidence)
  made = success & ~before
  correct = np.argmax(clean_probs, axis=-1) == labels
  snr, linf, l2 = (np.asarray(jax.vmap(size)(x, x_adv))
                   for size in (perturbation.snr_db, perturbation.linf, perturbation.l2))
  adv_class = np.argmax(adv_probs, axis=-1)
  return {
      "num_examples": int(len(labels)),
      "clean_accuracy": mean(correct),
      "success_rate": mean(success),
      "success_rate_clean_correct": mean(success, correct),
      "confident_success_rate": mean(confident),
      "snr_db_mean": mean(snr, made),
      "snr_db_median": mean(snr, made, np.median),
      "linf_mean": mean(linf, made),
      "l2_mean": mean(l2, made),
      "p_true_before": mean(classification.class_probability(clean_probs, labels)),
      "p_true_after": mean(classification.class_probability(adv_probs, labels)),
      "p_adv_class_after": mean(classification.class_probability(adv_probs, adv_class)),
      "p_target_after": (None if targets is None else
                         mean(classification.class_probability(adv_probs, targets))),
  }


def attack_victim(config: ml_collections.ConfigDict, victim: Victim, x: np.ndarray,
                  y: np.ndarray, targets, key: jax.Array, progress: tqdm.tqdm):
  """Runs every attack of `config.attacks` on `victim`.

  Returns:
    `(metrics per attack label, adversarial clips of config.main_attack)`.
  """
  task = victim.result.task
  metrics, main_adv = {}, None
  for index, (label, spec) in enumerate(config.attacks.items()):
    progress.set_postfix_str(f"{victim.name} {label}")
    attack = setup.build_attack(spec, task.logits_fn(), task.loss_fn(), config.bounds)
    if spec.get("targeted", False):
      clip, goal = setup.attack_pairs(y, targets, victim.clean_probs.shape[-1])
    else:
      clip, goal = np.arange(len(y)), None
    start = time.perf_counter()
    x_adv, nonfinite = victim.attack(attack, x[clip], y[clip] if goal is None else goal,
                                     jax.random.fold_in(key, index), config.attack_batch_size)
    seconds = time.perf_counter() - start
    metrics[label] = attack_metrics(x[clip], x_adv, y[clip], goal, victim.clean_probs[clip],
                                    victim.predict(x_adv),
                                    targeted_confidence=config.targeted_confidence)
    metrics[label].update(nonfinite_examples=nonfinite, seconds=seconds)
    if label == config.main_attack:
      main_adv = x_adv
    progress.update()
  return metrics, main_adv


# Budgets the attacks take as traced scalars: a curve over one of them compiles once per model.
TRACED_PARAMS = ("eps", "snr_db")


def _over_levels(config: ml_collections.ConfigDict, victim: Victim, make: Callable,
                 x: np.ndarray, y: np.ndarray, key: jax.Array, progress: tqdm.tqdm,
                 label: str) -> Iterator[Any]:
  """The outputs of `make(value)` (a per-example attack) on every clip at each level of
  `config.robustness.levels`, one key per clip and level.

  A budget (`TRACED_PARAMS`) is an argument of one compiled attack; any other param (a number of
  steps, say) builds and compiles the attack at each level.
  """
  curve, variables = config.robustness, victim.result.state.variables
  traced = curve.param in TRACED_PARAMS
  batched = jax.jit(lambda variables, value, *args: jax.vmap(
      make(value), in_axes=(None, 0, 0, 0))(variables, *args))
  for index, value in enumerate(curve.levels):
    progress.set_postfix_str(f"{victim.name} {label} {curve.param}={value}")
    keys = jax.random.split(jax.random.fold_in(key, index), len(x))
    if traced:
      apply = chunked(batched, config.attack_batch_size, variables, jnp.float32(value))
    else:
      apply = chunked(jax.jit(jax.vmap(make(value), in_axes=(None, 0, 0, 0))),
                      config.attack_batch_size, variables)
    yield apply(x, y, keys)
    progress.update()


def robustness_curve(config: ml_collections.ConfigDict, victim: Victim, x: np.ndarray,
                     y: np.ndarray, key: jax.Array, progress: tqdm.tqdm) -> List[float]:
  """Accuracy on the attacked clips at each `config.robustness.levels` of the curve's param."""
  curve, task = config.robustness, victim.result.task
  spec = config.attacks[curve.attack]

  def attack_at(value):
    return setup.build_attack(spec, task.logits_fn(), task.loss_fn(), config.bounds,
                              **{curve.param: value})

  accuracy = []
  for x_adv in _over_levels(config, victim, attack_at, x, y, key, progress, curve.attack):
    # A non-finite example is scored as its clean clip, as in the attack table.
    x_adv, _ = finite_or_clean(x_adv, x)
    accuracy.append(mean(np.argmax(victim.predict(x_adv), axis=-1) == y))
  return accuracy


def auto_attack_curve(config: ml_collections.ConfigDict, victim: Victim, x: np.ndarray,
                      y: np.ndarray, key: jax.Array,
                      progress: tqdm.tqdm) -> List[Dict[str, Optional[float]]]:
  """The AutoAttack ensemble (`config.auto_attack`) at each level of the robustness curve:
  `attacks.robust_accuracy`'s figures (robust accuracy, per component, and the gradient-masking
  diagnostics) per level, null where undefined."""
  curve, spec, task = config.robustness, config.auto_attack, victim.result.task

  def ensemble_at(value):
    return setup.build_auto_attack(spec, task.logits_fn(), task.loss_fn(), config.bounds,
                                   **{curve.param: value})

  return [{name: float(value) if np.isfinite(value) else None
           for name, value in attacks.robust_accuracy(outcome).items()}
          for outcome in _over_levels(config, victim, ensemble_at, x, y, key, progress,
                                      "auto_attack")]


def transfer_matrix(victims: List[Victim], adversarial: Dict[str, np.ndarray],
                    y: np.ndarray) -> List[List[Optional[float]]]:
  """Success of each row model's adversarial clips on each column model (`TRANSFER_RULE`)."""
  matrix = []
  for row in victims:
    cells = []
    for column in victims:
      correct = np.argmax(column.clean_probs, axis=-1) == y
      fooled = classification.untargeted_success(column.predict(adversarial[row.name]), y)
      cells.append(mean(fooled, correct))
    matrix.append(cells)
  return matrix
