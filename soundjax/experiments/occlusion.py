"""Paper 1's evaluation: occlude inputs by attribution, and see when the occluded input wins.

For every task of `config.tasks`, `config.num_models` models are trained (`workdir/<task>/
model_<i>`, seed `config.seed + i`, resumable). For each model and attribution method, ONE jitted,
vmapped computation per chunk of test examples computes the attribution once and evaluates every
cell (direction x replacement x fraction) of `attribution.occlusion_sweep` plus the deletion and
insertion curves. Metrics per cell are then computed on the host from the recorded logits:
accuracy, or for singing-voice detection F1/AUROC/... after a median filter and a threshold tuned
on the validation songs' unoccluded predictions. Figures are aggregated over models as mean and
standard deviation (ddof 1). What is occluded is the model input (log-mel spectrogram or image);
the front end runs once, before attribution.
"""

import dataclasses
import os
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.special

from soundjax import attribution, data, losses, report, train
from soundjax.data import excerpts
from soundjax.data.builders import jamendo
from soundjax.experiments import occlusion_checks, occlusion_report
from soundjax.metrics import detection


@dataclasses.dataclass
class Examples:
  """Model inputs and labels; `recording` numbers each frame's song (detection) or is None."""
  x: np.ndarray
  y: np.ndarray
  recording: Optional[np.ndarray] = None


@dataclasses.dataclass
class PreparedTask:
  """A task ready to sweep: data, inference functions on model inputs, statistics, examples."""
  builder: Any
  task: train.Task
  statistics: Dict[str, float]
  test: Examples
  valid: Optional[Examples]


def _batched_features(task: train.Task, batches) -> np.ndarray:
  features = jax.jit(task.features)
  return [(np.asarray(features(batch["x"])), batch["y"]) for batch in batches]


def _excerpt_examples(builder: excerpts.Excerpts, split: str, frames: int) -> Examples:
  source = builder.as_data_source(split)
  indices, recording = source.blocks(frames)
  records = [source[int(i)] for i in indices]
  return Examples(np.stack([r["excerpt"] for r in records]),
                  np.asarray([r["label"] for r in records], np.int32), recording)


def input_statistics(task: train.Task, builder, config: ml_collections.ConfigDict) -> Dict:
  """Mean, std, min and max of the model input over (a shuffled prefix of) the training split."""
  batch_size = 256
  stream = data.batches(builder, "train", batch_size=batch_size, shuffle=True,
                        num_samples=config.data.get("num_samples"))
  limit = config.get("statistics_examples")
  if limit is not None:
    stream = stream.slice(slice(0, -(-limit // batch_size)))
  total = total_sq = count = 0.0
  low, high = np.inf, -np.inf
  for x, _ in _batched_features(task, stream):
    x = x.astype(np.float64)
    total, total_sq, count = total + x.sum(), total_sq + np.square(x).sum(), count + x.size
    low, high = min(low, x.min()), max(high, x.max())
  mean = total / count
  return {"mean": mean, "std": float(np.sqrt(max(total_sq / count - mean ** 2, 0.0))),
          "min": float(low), "max": float(high)}


def prepare_task(config: ml_collections.ConfigDict) -> PreparedTask:
  """Prepares the data (excerpt view for detection), the task, statistics and examples."""
  builder = data.prepare(config.data.name, data_dir=config.data.data_dir,
                         manual_dir=config.data.get("manual_dir"), **config.data.settings)
  if config.metric == "detection":
    builder = excerpts.Excerpts(builder, length=config.excerpt_frames,
                                pad_value=float(np.log(jamendo.LOG_FLOOR)),
                                class_names=("nosing", "sing"))
  task = train.build_task(config, data.num_classes(builder))
  statistics = input_statistics(task, builder, config)
  if config.metric == "detection":
    test = _excerpt_examples(builder, "test", config.num_examples)
    valid = _excerpt_examples(builder, "valid", config.num_examples)
  else:
    raw = data.arrays(builder, "test", limit=config.num_examples,
                      num_samples=config.data.get("num_samples"))
    chunks = [{"x": raw["x"][i:i + 256], "y": raw["y"][i:i + 256]}
              for i in range(0, len(raw["y"]), 256)]
    test = Examples(np.concatenate([x for x, _ in _batched_features(task, chunks)]), raw["y"])
    valid = None
  return PreparedTask(builder, task, statistics, test, valid)


def make_methods(settings: ml_collections.ConfigDict, loss_fn: losses.LossFn,
                 statistics: Dict) -> Dict[str, attribution.Attribution]:
  """The configured attribution methods, by config name."""
  factories = {
      "abs_gradient": lambda: attribution.abs_gradient(loss_fn),
      "gradient": lambda: attribution.gradient(loss_fn),
      "grad_x_input": lambda: attribution.grad_x_input(loss_fn),
      "integrated_gradients": lambda: attribution.integrated_gradients(
          loss_fn, baseline=statistics["mean"], num_steps=settings.ig_steps,
          batch_size=settings.path_batch_size),
      "smoothgrad": lambda: attribution.smoothgrad(
          attribution.gradient(loss_fn), num_samples=settings.smoothgrad_samples,
          stddev=settings.smoothgrad_noise * (statistics["max"] - statistics["min"]),
          batch_size=settings.path_batch_size),
      "random": attribution.random_attribution,
  }
  return {name: factories[name]() for name in settings.methods}


def make_replacement(name: str, statistics: Dict) -> attribution.Replacement:
  """A replacement by config name, with the dataset statistics it needs."""
  values = {
      "mean": {"value": statistics["mean"]},
      "dataset_min": {"value": statistics["min"]},
      "noise": {"mean": statistics["mean"], "stddev": statistics["std"]},
  }
  return attribution.replacement(name, **values.get(name, {}))


def make_evaluator(method: attribution.Attribution, loss_fn, logits_fn,
                   settings: ml_collections.ConfigDict, statistics: Dict):
  """Jitted `(variables, xs, ys, key_data) -> {"sweep", "curves", "attribution"}` for a batch
  (`key_data`: raw uint32 keys, so chunks can be sliced on the host). The attribution is
  computed once per example and shared by the sweep and the curves."""
  replacements = [make_replacement(name, statistics) for name in settings.replacements]
  curve_fill = make_replacement(settings.curve_replacement, statistics)

  def evaluate(params, x, y, key_data):
    key = jax.random.wrap_key_data(key_data)
    a = method(params, x, y, key)
    given = lambda *_: a  # The sweeps rank this one attribution.
    sweep = attribution.occlusion_sweep(
        loss_fn, given, fractions=settings.fractions, replacements=replacements,
        directions=settings.directions, logits_fn=logits_fn, batch_size=settings.cell_batch_size)
    curves = attribution.deletion_insertion(
        loss_fn, given, fractions=settings.curve_fractions, replacement=curve_fill,
        logits_fn=logits_fn, batch_size=settings.cell_batch_size)
    return {"sweep": sweep(params, x, y, key), "curves": curves(params, x, y, key),
            "attribution": a}

  return jax.jit(jax.vmap(evaluate, in_axes=(None, 0, 0, 0)))



def _chunks(arrays, batch_size: int):
  """Yields `(chunk, valid)` over the leading axis; the last chunk is padded by repeating its
  last row (when there are several chunks), so that every compiled call sees one shape."""
  size = len(arrays[0])
  for start in range(0, size, batch_size):
    chunk = [a[start:start + batch_size] for a in arrays]
    valid = len(chunk[0])
    if valid < batch_size and size > batch_size:
      chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - valid, axis=0)]) for c in chunk]
    yield chunk, valid


def _concatenate(parts):
  return jax.tree.map(lambda *pieces: np.concatenate(pieces), *parts)


def scorer(config: ml_collections.ConfigDict, examples: Examples, threshold: Optional[float]):
  """`score(logits[N, *cells, C]) -> {metric: [*cells]}` for the task's metric."""
  if config.metric == "accuracy":
    _, predict = losses.loss_on_logits(config.loss)

    def accuracy(logits):
      labels = examples.y.reshape((-1,) + (1,) * (logits.ndim - 2))
      return {"accuracy": np.mean(np.asarray(predict(logits)) == labels, axis=0)}
    return accuracy

  songs = [examples.recording == r for r in np.unique(examples.recording)]
  labels = np.concatenate([examples.y[song] for song in songs])

  def detect(logits):
    probabilities = scipy.special.expit(logits[..., 0])
    cells = probabilities.shape[1:]
    scores = []
    for cell in np.ndindex(cells):
      column = probabilities[(slice(None),) + cell]
      filtered = detection.median_filter([column[song] for song in songs], config.median_frames)
      scores.append(detection.evaluate(np.concatenate(filtered), labels, threshold))
    return {name: np.reshape([s[name] for s in scores], cells) for name in scores[0]}
  return detect


def tune_threshold(config, prepared: PreparedTask, logits_fn, variables) -> Optional[float]:
  """Detection only: the threshold maximising accuracy on the validation songs' unoccluded,
  median-filtered predictions (as published); None for classification."""
  if config.metric != "detection":
    return None
  predict = jax.jit(jax.vmap(logits_fn, in_axes=(None, 0)))
  valid = prepared.valid
  logits = _concatenate([[np.asarray(predict(variables, chunk[0]))[:n]]
                         for chunk, n in _chunks([valid.x], config.attribution.example_batch_size)])[0]
  songs = [valid.recording == r for r in np.unique(valid.recording)]
  filtered = detection.median_filter([scipy.special.expit(logits[song, 0]) for song in songs],
                                     config.median_frames)
  return detection.tune_threshold(np.concatenate(filtered),
                                  np.concatenate([valid.y[song] for song in songs]))


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


def evaluate_model(config, prepared: PreparedTask, evaluators: Dict, logits_fn, variables,
                   seed: int):
  """Every method's sweep and curves on one trained model; returns `(results, maps)`."""
  settings = config.attribution
  threshold = tune_threshold(config, prepared, logits_fn, variables)
  score = scorer(config, prepared.test, threshold)
  test = prepared.test
  results, maps = {"seed": seed, "threshold": threshold, "methods": {}}, {}
  for index, (name, evaluator) in enumerate(evaluators.items()):
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), index), len(test.y))
    parts = []
    for (x, y, key), n in _chunks([test.x, test.y, np.asarray(jax.random.key_data(keys))],
                                  settings.example_batch_size):
      out = evaluator(variables, x, y, key)
      attributions = out.pop("attribution")
      if not parts:
        maps[name] = np.asarray(attributions[:settings.num_maps])
      parts.append(jax.tree.map(lambda v, n=n: np.asarray(v)[:n], out))
    summary = summarize_method(_concatenate(parts), score, settings.curve_fractions)
    results["original"] = summary.pop("original")  # The same for every method.
    results["methods"][name] = summary
  return results, maps


def run_task(name: str, config: ml_collections.ConfigDict, workdir: str) -> Dict:
  """Trains the task's models, sweeps every method on each, and aggregates over models."""
  start = time.perf_counter()
  prepared = prepare_task(config)
  logits_fn = losses.model_logits(prepared.task.model)  # On model inputs: no front end here.
  loss_fn = losses.per_example_loss(logits_fn, config.loss)
  methods = make_methods(config.attribution, loss_fn, prepared.statistics)
  evaluators = {}
  for method_name, method in methods.items():
    evaluators[method_name] = make_evaluator(method, loss_fn, logits_fn, config.attribution,
                                             prepared.statistics)
  per_model, maps, seconds = [], None, {"train": 0.0, "sweep": 0.0}
  for index in range(config.num_models):
    model_config = ml_collections.ConfigDict(config.to_dict())
    model_config.seed = config.seed + index
    tick = time.perf_counter()
    trained = train.train(model_config, os.path.join(workdir, name, f"model_{index}"),
                          builder=prepared.builder)
    tock = time.perf_counter()
    result, model_maps = evaluate_model(config, prepared, evaluators, logits_fn,
                                        trained.state.variables, model_config.seed)
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


def run(config: ml_collections.ConfigDict, workdir: str) -> Dict:
  """Runs every task of `config.tasks` and writes `results.json`, `summary.md` and figures.

  Args:
    config: see `configs/occlusion.py`.
    workdir: output folder; models train in `<workdir>/<task>/model_<i>` and resume there.

  Returns:
    The results written to `results.json`.
  """
  occlusion_checks.check_config(config)
  start = time.perf_counter()
  tasks = {}
  for name, task in config.tasks.items():
    task_config = ml_collections.ConfigDict(task.to_dict())
    task_config.update(seed=config.seed, num_models=config.num_models,
                       attribution=config.attribution.to_dict())
    tasks[name] = run_task(name, task_config, workdir)
  results = {"tasks": tasks, "wall_seconds": time.perf_counter() - start}
  occlusion_report.write(results, workdir)
  return results
