"""Paper 4 ("Adversarial attacks in sound event classification"): train or restore five sound
event classifiers, attack the same clips on each, and measure success, perturbation size,
confidence, robustness curves and transfer between the models.

Every attack perturbs the waveform, batched as `jax.jit(jax.vmap(attack, in_axes=(None, 0, 0,
0)))` over chunks of clips; the log-mel models are attacked through their front end, so one
adversarial clip can be scored by all five models.

The figures of `results.json` are defined in `evaluate.py`.
"""

import time
from typing import Any, Dict

import jax
import ml_collections
import numpy as np
import tqdm

from soundjax import attacks, data
from soundjax.experiments import results_page
from soundjax.experiments.adversarial import builders, curves, page, setup
from soundjax.experiments.adversarial import report as adversarial_report
from soundjax.experiments.adversarial.evaluate import (
  TRANSFER_RULE,
  attack_victim,
  mean,
  train_victim,
  transfer_matrix,
)
from soundjax.report import ensure_dir


def run(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, Any]:
  """Trains (or restores) the victims, attacks them and writes the report into `workdir`.

  Args:
    config: see `configs/adversarial.py`.
    workdir: output folder; models train in `workdir/models/<name>`, so a re-run restores them.

  Returns:
    The results written to `results.json`.
  """
  setup.check_config(config)
  start = time.perf_counter()
  ensure_dir(workdir)
  builder = data.prepare_config(config.data)
  class_names = list(builder.info.features[builder.info.supervised_keys[1]].names)
  targets = setup.resolve_targets(config.targets, class_names)
  clips = setup.select_clips(builder, config.clips, config.data.get("num_samples"))
  x, y = clips["x"], clips["y"]
  victims = [train_victim(config, name, workdir, builder, x) for name in config.models]

  root = jax.random.key(config.seed)
  per_model, adversarial, found, ensemble = {}, {}, {}, {}
  extra = builders.extra_curves(config)[0]
  levels = len(config.robustness.levels)
  total = len(victims) * (len(config.attacks) +
                          levels * (1 + len(extra) + config.auto_attack.enabled))
  with tqdm.tqdm(total=total, desc="attack") as progress:
    for index, victim in enumerate(victims):
      key = jax.random.fold_in(root, index)
      per_model[victim.name], adversarial[victim.name] = attack_victim(
          config, victim, x, y, targets, key, progress)
      found[victim.name] = curves.robustness_curves(
          config, victim, x, y, jax.random.fold_in(key, len(config.attacks)), progress)
      if config.auto_attack.enabled:
        ensemble[victim.name] = curves.auto_attack_curve(
            config, victim, x, y, jax.random.fold_in(key, len(config.attacks) + 1), progress)
  results = {
      "dataset": config.data.name,
      "class_names": class_names,
      "num_clips": int(len(y)),
      "clip_indices": clips["index"],
      "labels": y,
      "split": config.clips.split,
      "models": {v.name: {"steps": int(v.result.state.step),
                          "test_accuracy": v.result.evaluation["accuracy"],
                          "clean_accuracy": mean(np.argmax(v.clean_probs, axis=-1) == y)}
                 for v in victims},
      "attacks": per_model,
      "robustness": curves.results(config, found),
      "transfer": {"attack": config.main_attack, "rule": TRANSFER_RULE,
                   "models": [v.name for v in victims],
                   "matrix": transfer_matrix(victims, adversarial, y)},
  }
  if config.auto_attack.enabled:
    results["robustness"]["auto_attack"] = {
        "norm": config.auto_attack.norm,
        "components": list(attacks.ensemble.COMPONENTS),
        "kwargs": config.auto_attack.kwargs.to_dict(), "figures": ensemble}
  results["wall_seconds"] = time.perf_counter() - start
  adversarial_report.write(workdir, config, results, x, adversarial,
                           results_page.findings_block(page, results))
  return results
