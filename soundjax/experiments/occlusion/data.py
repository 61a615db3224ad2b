"""Data of the occlusion experiment: model inputs (the front end applied once), dataset
statistics of the model input, the test (and, for detection, validation) examples, and the
inference functions on model inputs that attributions differentiate."""

import dataclasses
import functools
from typing import Any, Dict, Optional

import jax
import ml_collections
import numpy as np

from soundjax import data, losses, parallel, training
from soundjax.data import excerpts
from soundjax.data.builders import jamendo
from soundjax.types import LogitsFn, LossFn


@dataclasses.dataclass
class Examples:
  """Model inputs and labels; `recording` numbers each frame's song (detection) or is None."""
  x: np.ndarray
  y: np.ndarray
  recording: Optional[np.ndarray] = None


@dataclasses.dataclass
class PreparedTask:
  """A task ready to sweep.

  Attributes:
    builder: what `training.train` reads (for detection, the excerpt view of the recordings).
    task: the model, front end and loss.
    logits_fn: per-example `(variables, model_input) -> logits`: no front end, since the model
      input is what is occluded.
    loss_fn: per-example `(variables, model_input, y) -> loss` that attributions differentiate.
    statistics: "mean", "std", "min", "max" of the model input over the training split.
    test: the examples swept.
    valid: the validation examples that tune the detection threshold (None otherwise).
  """
  builder: Any
  task: training.Task
  logits_fn: LogitsFn
  loss_fn: LossFn
  statistics: Dict[str, float]
  test: Examples
  valid: Optional[Examples]

  @functools.cached_property
  def _batched_logits(self):
    return jax.jit(jax.vmap(self.logits_fn, in_axes=(None, 0)))

  def predict(self, variables, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits of model inputs, in chunks of `batch_size` (compiled once per task)."""
    return parallel.chunked(self._batched_logits, batch_size, variables)(x)


def _batched_features(task: training.Task, batches):
  """Yields `(model inputs, labels)` of each batch: the front end (if any) applied once."""
  features = jax.jit(task.features)
  for batch in batches:
    yield np.asarray(features(batch["x"])), batch["y"]


def _excerpt_examples(builder: excerpts.Excerpts, split: str, frames: int) -> Examples:
  source = builder.as_data_source(split)
  indices, recording = source.blocks(frames)
  records = [source[int(i)] for i in indices]
  return Examples(np.stack([r["excerpt"] for r in records]),
                  np.asarray([r["label"] for r in records], np.int32), recording)


def input_statistics(task: training.Task, builder, config: ml_collections.ConfigDict) -> Dict:
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
  return {"mean": float(mean), "std": float(np.sqrt(max(total_sq / count - mean ** 2, 0.0))),
          "min": float(low), "max": float(high)}


def prepare_task(config: ml_collections.ConfigDict) -> PreparedTask:
  """Prepares the data (excerpt view for detection), the task, statistics and examples."""
  builder = data.prepare_config(config.data)
  if config.metric == "detection":
    builder = excerpts.Excerpts(builder, length=config.excerpt_frames,
                                pad_value=float(np.log(jamendo.LOG_FLOOR)),
                                class_names=("nosing", "sing"))
  task = training.build_task(config, data.num_classes(builder))
  logits_fn = losses.model_logits(task.model)
  loss_fn = losses.per_example_loss(logits_fn, config.loss)
  statistics = input_statistics(task, builder, config)
  if config.metric == "detection":
    test = _excerpt_examples(builder, "test", config.num_examples)
    valid = _excerpt_examples(builder, "valid", config.num_examples)
  else:
    raw = data.arrays(builder, "test", limit=config.num_examples,
                      num_samples=config.data.get("num_samples"))
    batches = [{"x": raw["x"][i:i + 256], "y": raw["y"][i:i + 256]}
               for i in range(0, len(raw["y"]), 256)]
    test = Examples(np.concatenate([x for x, _ in _batched_features(task, batches)]), raw["y"])
    valid = None
  return PreparedTask(builder, task, logits_fn, loss_fn, statistics, test, valid)


