"""Checks of an occlusion config before anything trains: a bad value fails naming its field.

Method and replacement names are checked against the library's registries
(`attribution.METHODS`, and a replacement built with dummy statistics through
`evaluate.make_replacement`, so a name the experiment cannot fill fails here, not mid-run).
"""

import ml_collections

from soundjax import attribution, checks
from soundjax.checks import config_field, require, require_choice
from soundjax.experiments.occlusion.evaluate import make_replacement
from soundjax.training import checks as training_checks

METRICS = ("accuracy", "detection")
_DUMMY_STATISTICS = {"mean": 0.0, "std": 1.0, "min": -1.0, "max": 1.0}


def _replacement(name: str, field: str) -> None:
  with config_field(field):
    make_replacement(name, _DUMMY_STATISTICS)


def check_attribution(settings: ml_collections.ConfigDict) -> None:
  """Methods, fractions, replacements, directions and the sizes of the batched computations."""
  with config_field("attribution.methods"):
    checks.names("config.attribution.methods", settings.methods, attribution.METHODS)
  with config_field("attribution.directions"):
    checks.names("config.attribution.directions", settings.directions, attribution.DIRECTIONS)
  require(len(settings.replacements) > 0, "attribution.replacements", "must not be empty.")
  for name in settings.replacements:
    _replacement(name, "attribution.replacements")
  _replacement(settings.curve_replacement, "attribution.curve_replacement")
  with config_field("attribution.fractions"):
    require(len(settings.fractions) > 0, "attribution.fractions", "must not be empty.")
    for value in settings.fractions:
      checks.fraction("config.attribution.fractions entry", value)
  with config_field("attribution.curve_fractions"):
    checks.increasing("config.attribution.curve_fractions", settings.curve_fractions, low=0.0,
                      high=1.0, minimum_length=2)
  with config_field("attribution"):
    for field in ("ig_steps", "smoothgrad_samples", "example_batch_size"):
      checks.integer(f"config.attribution.{field}", settings[field])
    for field in ("cell_batch_size", "path_batch_size"):
      checks.optional_integer(f"config.attribution.{field}", settings.get(field))
    checks.integer("config.attribution.num_maps", settings.num_maps, minimum=0)
    checks.nonnegative("config.attribution.smoothgrad_noise", settings.smoothgrad_noise)


def check_task(name: str, task: ml_collections.ConfigDict) -> None:
  """What `training.train` reads, the metric and the number of examples of one task."""
  prefix = f"tasks.{name}"
  training_checks.check_data(task.data, f"{prefix}.data")
  training_checks.check_frontend(task.get("frontend"), f"{prefix}.frontend")
  training_checks.check_model(task.model, f"{prefix}.model")
  training_checks.check_loss(task.loss, f"{prefix}.loss")
  training_checks.check_train(task.train, f"{prefix}.train")
  require_choice(task.metric, METRICS, f"{prefix}.metric", "metrics")
  with config_field(prefix):
    checks.integer(f"config.{prefix}.num_examples", task.num_examples)
    checks.optional_integer(f"config.{prefix}.statistics_examples",
                            task.get("statistics_examples"))
  if task.metric == "detection":
    require(task.loss == "sigmoid_binary_cross_entropy", f"{prefix}.loss",
            "must be 'sigmoid_binary_cross_entropy' for the detection metric.")
    with config_field(prefix):
      for field in ("excerpt_frames", "median_frames"):
        checks.integer(f"config.{prefix}.{field}", task.get(field))


def check_config(config: ml_collections.ConfigDict) -> None:
  """Everything `soundjax.experiments.occlusion.run` reads."""
  require(checks.is_integer(config.seed, 0), "seed",
          f"must be a non-negative integer, got {config.seed!r}.")
  require(checks.is_integer(config.num_models, 1), "num_models",
          f"must be an integer >= 1, got {config.num_models!r}.")
  require(len(config.tasks) > 0, "tasks", "must name at least one task.")
  for name, task in config.tasks.items():
    check_task(name, task)
  check_attribution(config.attribution)
