"""The SED experiment's figures: frame probabilities of a split, the validation scorer that
selects a model, the threshold choice, the test scores, their mean and spread over seeds, and
event F under PGD at a series of SNRs.

Scores (`score_split`), with events decoded from the median-filtered probabilities at the
threshold chosen on validation:
- `event`: event-based, the published setting (onset collar `scoring.collar`, offsets not
  evaluated); `event_sed_eval`: sed_eval's defaults (200 ms collar, offsets within
  max(200 ms, half the reference length)); overall figures and class-wise F.
- `segment`: segment-based over `scoring.segment_seconds`.
- `psds1`, `psds2`: the DCASE task 4 scenarios over `scoring.psds_thresholds` thresholds, over
  the classes with reference events in the split (None if fewer than two).
"""

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from soundjax import attacks, data, metrics, parallel, training
from soundjax.data.sed_targets import record_events
from soundjax.experiments.sed import setup
from soundjax.metrics import sed
from soundjax.types import Event

OVERALL = ("f_measure", "error_rate", "precision", "recall", "deletion_rate", "insertion_rate")


@dataclasses.dataclass(frozen=True)
class Reference:
  """One split's reference: filenames in the split's order, events and durations by filename."""
  filenames: List[str]
  events: Dict[str, List[Event]]
  durations: Dict[str, float]

  def first(self, count: int) -> "Reference":
    """The reference of the first `count` files alone: the events of the other files are not
    in it (scored against all, a subset's detections would miss every other file's events)."""
    names = self.filenames[:count]
    return Reference(names, {f: self.events[f] for f in names},
                     {f: self.durations[f] for f in names})


def class_names(builder) -> List[str]:
  """The detector's classes, in the order of its output columns."""
  return list(builder.info.features["labels"].feature.names)


def reference(builder, split: str, config: ml_collections.ConfigDict) -> Reference:
  """The events of `split` and its clips' scored duration (the frames the detector sees)."""
  source = data.split_source(builder, split)
  names = class_names(builder)
  records = [source[i] for i in range(len(source))]
  filenames = [str(r["filename"].decode() if isinstance(r["filename"], bytes) else r["filename"])
               for r in records]
  targets = config.data.frame_targets
  duration = targets.num_frames / targets.frame_rate
  return Reference(filenames, {f: record_events(r, names) for f, r in zip(filenames, records)},
                   {f: duration for f in filenames})


def probabilities(result: training.TrainResult, builder, split: str,
                  config: ml_collections.ConfigDict, predict=None) -> np.ndarray:
  """Frame probabilities `[clips, frames, classes]` of a trained detector on `split`, in record
  order (each process reads its rows of every batch; `training.evaluate` gathers them)."""
  batches = data.batches(builder, split, batch_size=config.train.eval_batch_size,
                         num_samples=config.data.get("num_samples"),
                         frame_targets=config.data.frame_targets.to_dict(),
                         shard=grain.sharding.ShardByJaxProcess())
  evaluation = training.evaluate(result.task, result.state.variables, batches, predict)
  return np.asarray(jax.nn.sigmoid(evaluation["logits"]))


def decode(reference: Reference, probs: np.ndarray, labels: Sequence[str], hop_seconds: float,
           threshold) -> Dict[str, List[Event]]:
  """Events of each file: its probabilities above `threshold` (one or one per class)."""
  return {name: sed.probabilities_to_events(p, hop_seconds=hop_seconds, labels=labels,
                                            threshold=threshold)
          for name, p in zip(reference.filenames, probs)}


def event_scores(reference: Reference, estimated, labels, collar: float) -> Dict[str, float]:
  """The published event-based setting's overall F and error rate (the selection figures)."""
  overall = sed.event_based(reference.events, estimated, t_collar=collar, evaluate_offset=False,
                            labels=labels)["overall"]
  return {"event_f": overall["f_measure"], "event_error_rate": overall["error_rate"]}


def selection_scorer(reference: Reference, labels: Sequence[str],
                     config: ml_collections.ConfigDict) -> training.Scorer:
  """Validation event F and ER at `config.selection_threshold`, for `training.train`."""
  hop = 1.0 / setup.frame_rate(config)

  def scorer(evaluation: Dict[str, Any]) -> Dict[str, float]:
    probs = np.asarray(jax.nn.sigmoid(evaluation["logits"]))
    estimated = decode(reference, probs, labels, hop, config.selection_threshold)
    return event_scores(reference, estimated, labels, config.scoring.collar)

  return scorer


def smooth(probs: np.ndarray, window: int) -> np.ndarray:
  """Each clip's probabilities median-filtered over `window` frames."""
  return probs if window == 1 else np.stack([sed.median_filter(p, window) for p in probs])


def choose_threshold(reference: Reference, probs: np.ndarray, labels: Sequence[str],
                     config: ml_collections.ConfigDict):
  """The grid threshold (global or per class) of best validation event F, published setting."""
  chosen = sed.choose_thresholds(
      dict(zip(reference.filenames, probs)), reference.events,
      hop_seconds=1.0 / setup.frame_rate(config), labels=labels,
      grid=config.decode.threshold_grid, per_class=config.decode.per_class,
      t_collar=config.scoring.collar, evaluate_offset=False)
  return chosen.tolist() if isinstance(chosen, np.ndarray) else chosen


def _figures(result: dict) -> Dict[str, Any]:
  return {**{k: result["overall"][k] for k in OVERALL},
          "class_wise_f": {label: figures["f_measure"]
                           for label, figures in result["class_wise"].items()}}


def score_split(reference: Reference, probs: np.ndarray, labels: Sequence[str], threshold,
                config: ml_collections.ConfigDict) -> Tuple[Dict[str, Any], Dict[str, list]]:
  """Every score of the module docstring for (smoothed) `probs` at `threshold`, and the events
  decoded at it."""
  hop, scoring = 1.0 / setup.frame_rate(config), config.scoring
  estimated = decode(reference, probs, labels, hop, threshold)
  psds_thresholds = np.linspace(0.01, 0.99, scoring.psds_thresholds)  # the DCASE recipes' grid
  # PSDS (as psds_eval) needs every class it scores to have reference events, of one class never
  # overlapping: it scores the classes the split holds, on merged references.
  present = sorted({labels.index(e[2]) for events in reference.events.values() for e in events})
  merged = {name: sed.merge_overlapping(events) for name, events in reference.events.items()}
  by_name = {name: p[:, present] for name, p in zip(reference.filenames, probs)}
  psds = {name: None if len(present) < 2 else float(sed.psds_from_probabilities(
      merged, reference.durations, by_name, hop_seconds=hop, thresholds=psds_thresholds,
      labels=[labels[c] for c in present], scenario=scenario).value)
          for name, scenario in (("psds1", sed.PSDS1), ("psds2", sed.PSDS2))}
  return {
      "event": _figures(sed.event_based(reference.events, estimated, t_collar=scoring.collar,
                                        evaluate_offset=False, labels=labels)),
      "event_sed_eval": _figures(sed.event_based(reference.events, estimated, labels=labels)),
      "segment": _figures(sed.segment_based(reference.events, estimated, labels=labels,
                                            time_resolution=scoring.segment_seconds)),
      **psds,
  }, estimated


def make_attack(task: training.Task, config: ml_collections.ConfigDict, key: jax.Array):
  """The jitted PGD of `config.attack` on a detector: `attack(variables, snr_db, x, y, index) ->
  (x_adv, probabilities)` for a batch of waveforms `x`, frame targets `y` and clip indices (whose
  keys are folded from `key`). `snr_db` is traced: every SNR runs on one compiled program.

  PGD (`attacks.pgd`, sign steps of `step_factor` x the SNR budget's radius / `num_steps`, from
  a random start in that radius) ascends the frame-wise BCE against the reference frame targets
  on the waveform, through the front end, under the SNR floor and the `bounds` box only: its
  Linf radius 2 covers the whole box.
  """
  spec = config.attack
  loss_fn, logits_fn = task.loss_fn(), task.logits_fn()

  def attack_batch(variables, snr_db, x, y, index):
    pgd = attacks.pgd(loss_fn, eps=2.0, step_factor=spec.step_factor, num_steps=spec.num_steps,
                      bounds=tuple(config.bounds), snr_db=snr_db)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(index)
    x_adv = jax.vmap(pgd, in_axes=(None, 0, 0, 0))(variables, x, y, keys)
    return x_adv, jax.nn.sigmoid(jax.vmap(logits_fn, in_axes=(None, 0))(variables, x_adv))

  return jax.jit(attack_batch)


def robustness(result: training.TrainResult, clips: Dict[str, np.ndarray], reference: Reference,
               labels: Sequence[str], threshold, config: ml_collections.ConfigDict,
               key: jax.Array, clean_probs: np.ndarray) -> Dict[str, Any]:
  """Event F of the detector's PGD examples (`make_attack`) at each SNR of `config.attack`.

  Args:
    result: the trained detector.
    clips: `{"x": waveforms, "y": frame targets}` of the first test clips.
    reference: the test split's reference (its first files are the clips).
    labels: the class names.
    threshold: the detector's decision threshold(s).
    config: the experiment config.
    key: PGD's random starts.
    clean_probs: the detector's (smoothed) test probabilities of the clips.

  Returns:
    `{"num_clips", "clean": {event_f, event_error_rate}, "curve": [{snr_db, event_f,
    event_error_rate, measured_snr_db_min}, ...]}`.
  """
  hop, collar = 1.0 / setup.frame_rate(config), config.scoring.collar
  attack = make_attack(result.task, config, key)
  subset = reference.first(len(clips["x"]))
  index = np.arange(len(clips["x"]))
  curve = []
  for snr in config.attack.snr_db:
    run = parallel.chunked(attack, config.attack.batch_size, result.state.variables,
                           jnp.float32(snr))
    x_adv, probs = run(clips["x"], clips["y"], index)
    estimated = decode(subset, smooth(probs, config.decode.median_window), labels, hop,
                       threshold)
    measured = np.asarray(jax.vmap(metrics.perturbation.snr_db)(clips["x"], x_adv))
    curve.append({"snr_db": float(snr), **event_scores(subset, estimated, labels, collar),
                  "measured_snr_db_min": float(np.min(measured))})
  clean = event_scores(subset, decode(subset, clean_probs, labels, hop, threshold), labels,
                       collar)
  return {"num_clips": int(len(index)), "clean": clean, "curve": curve}


def write_predictions(path: str, estimated: Dict[str, List[Event]],
                      reference: Optional[Reference] = None) -> str:
  """DCASE TSV of a split's predictions (every file, in the split's order)."""
  names = reference.filenames if reference is not None else list(estimated)
  sed.write_events_tsv(path, {name: estimated.get(name, []) for name in names})
  return os.path.basename(path)
