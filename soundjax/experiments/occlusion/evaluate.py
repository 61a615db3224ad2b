"""One task of the occlusion experiment: methods and replacements by config name, the jitted
evaluator of a chunk of examples, scoring of the recorded logits, and the loop over models.
"""

import os
import time
from typing import Dict, Optional

import jax
import ml_collections
import numpy as np
import scipy.special

from soundjax import attribution, losses, parallel, report, training
from soundjax.experiments.occlusion import report as occlusion_report
from soundjax.experiments.occlusion.data import Examples, PreparedTask, prepare_task
from soundjax.metrics import frame_detection
from soundjax.types import Attribution, LossFn, Replacement


def make_methods(settings: ml_collections.ConfigDict, loss_fn: LossFn,
                 statistics: Dict) -> Dict[str, Attribution]:
  """The configured attribution methods (`attribution.METHODS` names) with their settings."""
  hyper_parameters = {
      "integrated_gradients": dict(baseline=statistics["mean"], num_steps=settings.ig_steps,
                                   batch_size=settings.path_batch_size),
      "smoothgrad": dict(num_samples=settings.smoothgrad_samples,
                         stddev=settings.smoothgrad_noise * (statistics["max"] - statistics["min"]),
                         batch_size=settings.path_batch_size),
  }
  return {name: attribution.method(name, loss_fn, **hyper_parameters.get(name, {}))
          for name in settings.methods}


def make_replacement(name: str, statistics: Dict) -> Replacement:
  """A replacement by config name, with the dataset statistics it needs."""
  values = {
      "mean": {"value": statistics["mean"]},
      "dataset_min": {"value": statistics["min"]},
      "noise": {"mean": statistics["mean"], "stddev": statistics["std"]},
  }
  return attribution.replacement(name, **values.get(name, {}))


def make_evaluator(method: Attribution, loss_fn, logits_fn,
                   settings: ml_collections.ConfigDict, statistics: Dict):
  """Jitted `(variables, xs, ys, key_data) -> {"sweep", "curves", "attribution"}` for a batch
  (`key_data`: raw uint32 keys, so chunks can be sliced on the host). The attribution is
  computed once per example and shared by the sweep and the curves."""
  replacements = [make_replacement(name, statistics) for name in settings.replacements]
  curve_fill = make_replacement(settings.curve_replacement, statistics)

  def evaluate(params, x, y, key_data):
    key = jax.random.wrap_key_data(key_data)
    # The sweep's documented key split: the first key is the attribution's, key 1 + r is
    # replacement r's, so keyed methods and noise fills draw independent streams.
    a = method(params, x, y, jax.random.split(key, 1 + len(replacements))[0])
    # Both sweeps rank this one attribution; they are built inside the trace to close over `a`.
    given = lambda *_: a
    sweep = attribution.occlusion_sweep(
        loss_fn, given, fractions=settings.fractions, replacements=replacements,
        directions=settings.directions, logits_fn=logits_fn, batch_size=settings.cell_batch_size)
    curves = attribution.deletion_insertion(
        loss_fn, given, fractions=settings.curve_fractions, replacement=curve_fill,
        logits_fn=logits_fn, batch_size=settings.cell_batch_size)
    return {"sweep": sweep(params, x, y, key), "curves": curves(params, x, y, key),
            "attribution": a}

  return jax.jit(jax.vmap(evaluate, in_axes=(None, 0, 0, 0)))


def scorer(config: ml_collections.ConfigDict, examples: Examples, threshold: Optional[float]):
  """`score(logits[N, *cells, C]) -> {metric: [*cells]}` for the task's metric."""
  if config.metric == "accuracy":
    _, predict = losses.loss_on_logits(config.loss)

    def accuracy(logits):
      labels = examples.y.reshape((-1,) + (1,) * (logits.ndim - 2))
      return {"accuracy": np.mean(np.asarray(predict(logits)) == labels, axis=0)}
    return accuracy

  labels = np.concatenate(_per_recording(examples.y, examples.recording))

  def detect(logits):
    probabilities = scipy.special.expit(logits[..., 0])
    cells = probabilities.shape[1:]
    scores = [frame_detection.evaluate(_smoothed(probabilities[(slice(None),) + cell], examples,
                                           config.median_frames), labels, threshold)
              for cell in np.ndindex(cells)]
    return {name: np.reshape([s[name] for s in scores], cells) for name in scores[0]}
  return detect


def _per_recording(values: np.ndarray, recording: np.ndarray) -> list:
  return [values[recording == r] for r in np.unique(recording)]


def _smoothed(probabilities: np.ndarray, examples: Examples, median_frames: int) -> np.ndarray:
  """Frame probabilities median-filtered within each recording, concatenated."""
  return np.concatenate(frame_detection.median_filter(
      _per_recording(probabilities, examples.recording), median_frames))


def tune_threshold(config, prepared: PreparedTask, variables) -> Optional[float]:
  """Detection only: the threshold maximising accuracy on the validation songs' unoccluded,
  median-filtered predictions (as published); None for classification."""
  if config.metric != "detection":
    return None
  valid = prepared.valid
  logits = prepared.predict(variables, valid.x, config.attribution.example_batch_size)
  return frame_detection.tune_threshold(
      _smoothed(scipy.special.expit(logits[:, 0]), valid, config.median_frames),
      np.concatenate(_per_recording(valid.y, valid.recording)))


def summarize_method(raw: Dict, score, curve_fractions) -> Dict:
  """Per-cell loss and metric figures of one method on one model, from batched outputs."""
  sweep, curves = attribution.summarize(raw["sweep"]), attribution.summarize(raw["curves"])
  original = {"loss": np.asarray(sweep["loss_original"]), **score(raw["sweep"]["logits_original"])}
  cells = score(raw["sweep"]["logits"])
  curve_metrics = {"loss": np.asarray(curves["loss"]), **score(raw["curves"]["logits"])}
  return {
      "original": original,
      "sweep": {"loss": np.asarray(sweep["loss"]),
                "loss_difference": np.asarray(sweep["loss_difference"]),
                "loss_fell": np.asarray(sweep["loss_fell"]), **cells,
                **{f"{m}_difference": cells[m] - original[m] for m in cells}},
      "curves": curve_metrics,
      "areas": {name: np.asarray(attribution.curve_area(curve_fractions, values))
                for name, values in curve_metrics.items()},
  }


def evaluate_model(config, prepared: PreparedTask, evaluators: Dict, variables, seed: int):
  """Every method's sweep and curves on one trained model; returns `(results, maps)`."""
  settings = config.attribution
  threshold = tune_threshold(config, prepared, variables)
  score = scorer(config, prepared.test, threshold)
  test = prepared.test
  results, maps = {"seed": seed, "threshold": threshold, "methods": {}}, {}
  for index, (name, evaluator) in enumerate(evaluators.items()):
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), index), len(test.y))
    evaluate = parallel.chunked(evaluator, settings.example_batch_size, variables)
    out = evaluate(test.x, test.y, np.asarray(jax.random.key_data(keys)))
    maps[name] = out.pop("attribution")[:settings.num_maps]
    summary = summarize_method(out, score, settings.curve_fractions)
    results["original"] = summary.pop("original")  # The same for every method.
    results["methods"][name] = summary
  return results, maps


def run_task(name: str, config: ml_collections.ConfigDict, workdir: str) -> Dict:
  """Trains the task's models, sweeps every method on each, and aggregates over models."""
  start = time.perf_counter()
  prepared = prepare_task(config)
  methods = make_methods(config.attribution, prepared.loss_fn, prepared.statistics)
  evaluators = {method_name: make_evaluator(method, prepared.loss_fn, prepared.logits_fn,
                                            config.attribution, prepared.statistics)
                for method_name, method in methods.items()}
  per_model, maps, seconds = [], None, {"train": 0.0, "sweep": 0.0}
  for index in range(config.num_models):
    model_config = ml_collections.ConfigDict(config.to_dict())
    model_config.seed = config.seed + index
    tick = time.perf_counter()
    trained = training.train(model_config, os.path.join(workdir, name, f"model_{index}"),
                          builder=prepared.builder)
    tock = time.perf_counter()
    result, model_maps = evaluate_model(config, prepared, evaluators, trained.state.variables,
                                        model_config.seed)
    seconds["train"] += tock - tick
    seconds["sweep"] += time.perf_counter() - tock
    result["test_accuracy"] = trained.evaluation["accuracy"]
    per_model.append(result)
    maps = maps if maps is not None else model_maps
  seconds["total"] = time.perf_counter() - start
  results = occlusion_report.task_results(config, prepared, per_model, seconds)
  occlusion_report.plot_task(name, results, prepared.test.x[:config.attribution.num_maps], maps,
                             occlusion_report.is_spectrogram(config),
                             report.ensure_dir(os.path.join(workdir, "figures")))
  return results
