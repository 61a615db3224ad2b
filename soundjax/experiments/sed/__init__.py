"""Paper 3 ("Memory controlled sequential self attention for sound recognition"): train the CRNN
detector without attention, with attention of each width and with multi-head attention, over
several seeds; score the test split as the paper does and beyond (PSDS, sed_eval's defaults,
segment-based), and attack every detector with PGD under an SNR budget.

Each detector and seed trains in `workdir/models/<detector>/seed_<seed>` (a re-run restores it),
keeping its best state by validation event F; the decision threshold is then chosen on the
validation split and the test split is scored once. The figures are defined in `evaluate.py`.
"""

import os
import time
from typing import Any, Dict

import jax
import ml_collections

from soundjax import data, training
from soundjax.experiments import results_page
from soundjax.experiments.sed import evaluate, page, setup
from soundjax.experiments.sed import report as sed_report
from soundjax.report import ensure_dir, mean_std

# The scores averaged over seeds (the other keys of a run are its settings).
SCORES = ("event", "event_sed_eval", "segment", "psds1", "psds2")


def _train_and_score(config: ml_collections.ConfigDict, detector: setup.Detector, seed: int,
                     workdir: str, builder, references, scorer, labels) -> Dict[str, Any]:
  """Trains (or restores) one detector, picks its threshold on validation, scores the test."""
  result = training.train(setup.detector_config(config, detector, seed),
                          os.path.join(workdir, "models", detector.name, f"seed_{seed}"),
                          builder=builder, scorer=scorer)
  predict = training.make_predict(result.task)
  window = config.decode.median_window
  probs = {split: evaluate.smooth(evaluate.probabilities(result, builder, split, config, predict),
                                  window) for split in ("validate", "test")}
  threshold = evaluate.choose_threshold(references["validate"], probs["validate"], labels, config)
  scores, estimated = evaluate.score_split(references["test"], probs["test"], labels, threshold,
                                           config)
  return {"run": {"seed": seed, "selected_step": int(result.state.step), "threshold": threshold,
                  **scores},
          "result": result, "test_probs": probs["test"], "estimated": estimated}


def run(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, Any]:
  """Trains (or restores) every detector and seed, scores, attacks, and writes the report.

  Args:
    config: see `configs/sed_attention.py`.
    workdir: output folder.

  Returns:
    The results written to `results.json`.
  """
  setup.check_config(config)
  start = time.perf_counter()
  ensure_dir(workdir)
  builder = data.prepare_config(config.data)
  labels = evaluate.class_names(builder)
  references = {split: evaluate.reference(builder, split, config)
                for split in ("validate", "test")}
  scorer = evaluate.selection_scorer(references["validate"], labels, config)
  # The first test clips, waveforms and frame targets, that PGD attacks (none: no attack).
  clips = data.arrays(
      builder, "test", limit=config.attack.num_clips, num_samples=config.data.get("num_samples"),
      frame_targets=config.data.frame_targets.to_dict()) if config.attack.num_clips else None
  key = jax.random.key(config.seed)
  detectors, firsts = {}, {}
  for detector in setup.detectors(config):
    outcomes = [_train_and_score(config, detector, seed, workdir, builder, references, scorer,
                                 labels) for seed in config.seeds]
    runs = [outcome["run"] for outcome in outcomes]
    first = firsts[detector.name] = outcomes[0]
    detectors[detector.name] = {
        "widths": list(detector.widths), "runs": runs,
        **mean_std([{k: r[k] for k in SCORES} for r in runs]),
    }
    if config.attack.num_clips:
      detectors[detector.name]["robustness"] = evaluate.robustness(
          first["result"], clips, references["test"], labels, first["run"]["threshold"], config,
          jax.random.fold_in(key, len(firsts)), first["test_probs"][:len(clips["x"])])
  results = {
      "dataset": config.data.name,
      "class_names": labels,
      "num_frames": int(config.data.frame_targets.num_frames),
      "frame_rate": float(config.data.frame_targets.frame_rate),
      "seeds": list(config.seeds),
      "num_test_clips": len(references["test"].filenames),
      "detectors": detectors,
  }
  results["wall_seconds"] = time.perf_counter() - start
  sed_report.write(workdir, config, results, builder, references["test"], firsts,
                   results_page.findings_block(page, results))
  return results
