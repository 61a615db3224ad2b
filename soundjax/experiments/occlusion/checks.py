"""Checks of an occlusion config before anything trains: a bad value fails naming its field."""

import numbers

import ml_collections
import numpy as np

from soundjax import attribution, losses
from soundjax.config_checks import (check_data, check_frontend, check_model, check_train,
                                    require)

METHODS = ("abs_gradient", "gradient", "grad_x_input", "integrated_gradients", "smoothgrad",
           "random")
# Config names of replacement values; "image_min" / "image_max" are the paper's spellings.
REPLACEMENTS = ("mean", "dataset_min", "example_min", "example_max", "noise", "image_min",
                "image_max")
METRICS = ("accuracy", "detection")


def _is_int(value, low: int) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _positive_or_none(settings, field: str) -> None:
  value = settings.get(field)
  require(value is None or _is_int(value, 1), f"attribution.{field}",
          f"must be None or an integer >= 1, got {value!r}.")


def _names(values, known, field: str) -> None:
  require(len(values) > 0, field, "must not be empty.")
  for value in values:
    require(value in known, field, f"has unknown entry {value!r}; known: {list(known)}.")


def _fraction(value) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 1


def check_attribution(settings: ml_collections.ConfigDict) -> None:
  """Methods, fractions, replacements, directions and the sizes of the batched computations."""
  _names(settings.methods, METHODS, "attribution.methods")
  _names(settings.replacements, REPLACEMENTS, "attribution.replacements")
  _names(settings.directions, attribution.DIRECTIONS, "attribution.directions")
  require(settings.curve_replacement in REPLACEMENTS, "attribution.curve_replacement",
          f"is {settings.curve_replacement!r}; known: {list(REPLACEMENTS)}.")
  for field in ("fractions", "curve_fractions"):
    values = settings[field]
    require(len(values) > 0, f"attribution.{field}", "must not be empty.")
    for value in values:
      require(_fraction(value), f"attribution.{field}",
              f"must hold numbers in [0, 1], got {value!r}.")
  require(len(settings.curve_fractions) >= 2 and np.all(np.diff(settings.curve_fractions) > 0),
          "attribution.curve_fractions", "must be at least two increasing fractions.")
  for field in ("ig_steps", "smoothgrad_samples", "example_batch_size"):
    require(_is_int(settings[field], 1), f"attribution.{field}",
            f"must be an integer >= 1, got {settings[field]!r}.")
  _positive_or_none(settings, "cell_batch_size")
  _positive_or_none(settings, "path_batch_size")
  require(_is_int(settings.num_maps, 0), "attribution.num_maps",
          f"must be an integer >= 0, got {settings.num_maps!r}.")
  noise = settings.smoothgrad_noise
  require(isinstance(noise, numbers.Real) and np.isfinite(noise) and noise >= 0,
          "attribution.smoothgrad_noise", f"must be a finite number >= 0, got {noise!r}.")


def check_task(name: str, task: ml_collections.ConfigDict) -> None:
  """What `train.train` reads, the metric and the number of examples of one task."""
  prefix = f"tasks.{name}"
  check_data(task.data, f"{prefix}.data")
  check_frontend(task.get("frontend"), f"{prefix}.frontend")
  check_model(task.model, f"{prefix}.model")
  require(task.loss in losses.LOGIT_LOSSES, f"{prefix}.loss",
          f"is {task.loss!r}; known losses: {sorted(losses.LOGIT_LOSSES)}.")
  check_train(task.train, f"{prefix}.train")
  require(task.metric in METRICS, f"{prefix}.metric", f"is {task.metric!r}; known: {METRICS}.")
  require(_is_int(task.num_examples, 1), f"{prefix}.num_examples",
          f"must be an integer >= 1, got {task.num_examples!r}.")
  limit = task.get("statistics_examples")
  require(limit is None or _is_int(limit, 1), f"{prefix}.statistics_examples",
          f"must be None or an integer >= 1, got {limit!r}.")
  if task.metric == "detection":
    require(task.loss == "sigmoid_binary_cross_entropy", f"{prefix}.loss",
            "must be 'sigmoid_binary_cross_entropy' for the detection metric.")
    for field in ("excerpt_frames", "median_frames"):
      require(_is_int(task.get(field), 1), f"{prefix}.{field}",
              f"must be an integer >= 1, got {task.get(field)!r}.")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Everything `soundjax.experiments.occlusion.run` reads."""
  require(_is_int(config.seed, 0), "seed", f"must be a non-negative integer, got {config.seed!r}.")
  require(_is_int(config.num_models, 1), "num_models",
          f"must be an integer >= 1, got {config.num_models!r}.")
  require(len(config.tasks) > 0, "tasks", "must name at least one task.")
  for name, task in config.tasks.items():
    check_task(name, task)
  check_attribution(config.attribution)
