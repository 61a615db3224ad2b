"""Paper 2 ("Deep embeddings for robust user-based amateur vocal percussion classification"):
embeddings supervised at several label levels, per-user classifiers on them, baselines, saliency.

Each label level and seed trains the embedding CNN in `workdir/models/<level>/seed_<seed>` (a
re-run restores it) on the users not held out, selecting its best state by accuracy on their
improvised takes (the training loop's "test" split without the held-out users). Every held-out
user's records are then embedded, and per user the classifiers are fit on the isolated-take
embeddings against instrument labels and scored on the improvised take (`evaluate.py`). The
engineered baselines go through the same per-user classifiers; the instrument models give the
saliency maps. The embeddings are saved in `workdir/embeddings/<level>_seed_<seed>.npz`.
"""

import dataclasses
import os
import time
from typing import Any, Dict

import jax
import ml_collections
import numpy as np

from soundjax import data, training
from soundjax.experiments import results_page
from soundjax.experiments.vocal_percussion import (
  baselines,
  evaluate,
  page,
  recogniser,
  robustness,
  setup,
)
from soundjax.experiments.vocal_percussion import report as vp_report
from soundjax.report import ensure_dir, on_process_zero

# The level whose models give the saliency maps (their classes are the instruments).
SALIENCY_LEVEL = "instrument"


def _save_embeddings(workdir: str, level: str, seed: int, features: np.ndarray,
                     records: evaluate.Records) -> str:
  """Writes the embeddings (on process 0) and returns their file's path relative to `workdir`."""
  name = os.path.join("embeddings", f"{level}_seed_{seed}.npz")
  _write_embeddings(workdir, name, features, records)
  return name


@on_process_zero
def _write_embeddings(workdir: str, name: str, features: np.ndarray,
                      records: evaluate.Records) -> None:
  ensure_dir(os.path.join(workdir, os.path.dirname(name)))
  np.savez(os.path.join(workdir, name), embeddings=features, user=records.user,
           instrument=records.instrument, is_train=records.is_train)


def _level(config, level: str, num_classes, builder, records: evaluate.Records,
           patches: np.ndarray, workdir: str, saliency: Dict[str, Any]) -> Dict[str, Any]:
  """Trains (or restores) every seed of one level and scores each one's embeddings (and, with
  `config.robustness`, their adversarial counterparts)."""
  task = setup.task(config, level, num_classes)
  embed_fn = evaluate.embedder(task.model, config)
  saliency_fn = (evaluate.make_saliency(task.model)
                 if level == SALIENCY_LEVEL and len(saliency["clips"]) else None)
  attacking = config.robustness is not None
  if attacking:  # The level's own loss, on patches: its task without the front end.
    spec = config.robustness
    pipe = robustness.make_pipeline(task.model, dataclasses.replace(task, frontend=None).loss_fn(),
                                    num_steps=spec.num_steps, rel_step=spec.rel_step)
    labels = evaluate.read_labels(builder, config.held_out_users, level)
  # The records training reads, counted through the exclusion the training config carries.
  exclude = setup.level_config(config, level, config.seeds[0]).data.exclude.to_dict()
  training_records = len(data.batches(builder, "train", batch_size=1, exclude=exclude))
  runs = []
  for seed in config.seeds:
    result = training.train(setup.level_config(config, level, seed),
                            os.path.join(workdir, "models", level, f"seed_{seed}"),
                            builder=builder, task=task)
    features = evaluate.embed(embed_fn, result.state.variables, records.audio,
                              config.embed_batch_size)
    runs.append({
        "seed": seed, "selected_step": int(result.state.step),
        # The loop's final evaluation: the training users' improvised takes, the held-out
        # users excluded; its record count shows that exclusion.
        "validation_accuracy": float(result.evaluation["accuracy"]),
        "num_validation_records": int(len(result.evaluation["labels"])),
        "embeddings_file": _save_embeddings(workdir, level, seed, features, records),
        **evaluate.scores(features, records, config, seed)})
    if attacking:
      runs[-1]["robustness"] = robustness.adversarial_scores(
          pipe, result.state.variables, patches, labels, records, config, eps=spec.eps,
          seed=seed, key=jax.random.key(seed), batch_size=spec.batch_size,
          clips_per_user=spec.clips_per_user)
    if saliency_fn is not None:
      clips = saliency["clips"]
      maps = evaluate.saliency_maps(saliency_fn, result, patches[clips],
                                    records.instrument[clips], jax.random.key(seed))
      saliency["maps"].append(maps["maps"])
      saliency["accuracy"].append(maps["accuracy"])
  found = {"num_classes": num_classes, "num_training_records": training_records, "runs": runs,
           **evaluate.mean_std(runs)}
  if attacking:
    found["robustness"] = robustness.mean_std([run["robustness"] for run in runs])
  return found


def _baselines(config, builder, records: evaluate.Records) -> Dict[str, Any]:
  """The timbre and feature-selection baselines through the per-user classifiers, per seed."""
  rate = evaluate.sample_rate(builder)
  found = {}
  if config.baselines.timbre is not None:
    timbre = evaluate.timbre_features(records, config, rate)
    runs = [{"seed": seed, **evaluate.scores(timbre, records, config, seed)}
            for seed in config.seeds]
    found["timbre"] = {"dimension": int(timbre.shape[1]), "runs": runs,
                       **evaluate.mean_std(runs)}
  if config.baselines.feature_selection:
    engineered = np.stack([baselines.engineered_features(a, rate) for a in records.audio])
    pool, labels = evaluate.selection_features(builder, config)
    spec, runs = config.baselines, []
    for seed in config.seeds:
      kept = baselines.select_features(pool, labels, num_features=spec.num_features, seed=seed,
                                       num_trees=spec.num_trees, num_repeats=spec.num_repeats)
      runs.append({"seed": seed,
                   "selected": [baselines.ENGINEERED_FEATURE_NAMES[i] for i in kept],
                   **evaluate.scores(engineered[:, kept], records, config, seed)})
    found["feature_selection"] = {"dimension": int(spec.num_features),
                                  "num_ranking_records": int(len(pool)), "runs": runs,
                                  **evaluate.mean_std(runs)}
  if config.baselines.gmm_hmm:
    sequences = recogniser.mfcc_sequences(records.audio, rate)
    runs = [{"seed": seed, **evaluate.figures(recogniser.per_user_accuracy(
        sequences, records.instrument, records.user, records.is_train, seed=seed))}
            for seed in config.seeds]
    found["gmm_hmm"] = {"runs": runs, **evaluate.mean_std(runs)}
  return found


def run(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, Any]:
  """Trains (or restores) every level and seed, runs the per-user protocol, writes the report.

  Args:
    config: see `configs/vocal_percussion.py`.
    workdir: output folder.

  Returns:
    The results written to `results.json`.
  """
  setup.check_config(config)
  if config.robustness is not None:  # Here: `robustness` reads `evaluate`, which reads `setup`.
    robustness.check_config(config.robustness)
  start = time.perf_counter()
  builder = data.prepare_config(config.data)
  num_classes = setup.check_builder(config, builder)
  held_out = sorted(int(u) for u in config.held_out_users)
  records = evaluate.read_records(builder, held_out)
  setup.check_records(config, records.user, records.is_train)
  ensure_dir(workdir)
  clips = evaluate.saliency_clips(records, config.saliency.clips_per_instrument)
  patches = evaluate.patches(config, records.audio)
  saliency = {"clips": clips, "maps": [], "accuracy": []}
  levels = {level: _level(config, level, num_classes[level], builder, records, patches, workdir,
                          saliency)
            for level in config.levels}
  user_names = builder.info.features["user"].names
  instruments = builder.info.features[setup.EVALUATION_LABEL].names
  results = {
      "dataset": config.data.name,
      "seeds": list(config.seeds),
      "levels": list(config.levels),
      "methods": list(config.classifiers.methods),
      "held_out_users": held_out,
      "held_out_user_names": [user_names[u] for u in held_out],
      "instrument_names": list(instruments),
      "num_records": {"train": int(np.sum(records.is_train)),
                      "test": int(np.sum(~records.is_train))},
      "embeddings": levels,
      "baselines": _baselines(config, builder, records),
  }
  if saliency["maps"]:
    results["saliency"] = {
        "level": SALIENCY_LEVEL, "clips": int(len(clips)),
        "instruments": [instruments[k] for k in np.unique(records.instrument[clips])],
        "accuracy": saliency["accuracy"]}
  results["wall_seconds"] = time.perf_counter() - start
  vp_report.write(workdir, results, {"maps": saliency["maps"], "patches": patches[clips],
                                     "instruments": records.instrument[clips]},
                  results_page.findings_block(page, results))
  return results
