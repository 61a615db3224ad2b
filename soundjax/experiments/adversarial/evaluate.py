"""Victims and what is measured on them: training or restoring a victim, attacking it, and the
transfer matrix (the robustness curves are in `curves.py`).

Conventions of `results.json` (all rates are fractions in [0, 1], null where undefined):
- `num_examples`: the examples an attack ran on: every clip (or clip x target), or for an attack
  with `per_class` set the first that many clips of each class.
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
- `robustness.accuracy`: per model, accuracy on all attacked clips at each of `levels` under
  `robustness.attack` (its kwargs overridden by `robustness.kwargs`), stepping as
  `robustness.step` records (the rule, "madry" or "fixed" (`builders`), and its figures).
  `robustness.one_step` and `robustness.double_steps` (for a budget curve of an iterative
  attack): the same under `builders.ONE_STEP` and under the curve attack with twice its steps.
- `robustness.sanity`: the checks of Carlini et al. (2019) (`sanity.py`): `rules`, each check's
  rule with its threshold, and per model and check `passed` (true, false, or null when it cannot
  be made, with the `reason`) and the figures behind it.
"""

import dataclasses
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import ml_collections
import numpy as np
import tqdm

from soundjax import training
from soundjax.experiments.adversarial import builders, setup
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
    attack = builders.build_attack(spec, task.logits_fn(), task.loss_fn(), config.bounds)
    subset = setup.first_per_class(y, spec.get("per_class"))
    if spec.get("targeted", False):
      clip, goal = setup.attack_pairs(y[subset], targets, victim.clean_probs.shape[-1])
      clip = subset[clip]
    else:
      clip, goal = subset, None
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
