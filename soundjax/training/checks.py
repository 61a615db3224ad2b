"""Checks of a config before anything runs: a bad value fails at start, naming its field."""

from typing import Any

import ml_collections
import optax

from soundjax import frontend, losses, model_selection, models
from soundjax.data.builders import BUILDERS


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


def require(condition: bool, field: str, message: str) -> None:
  """Raises `ConfigError("config.<field> <message>")` unless `condition` holds."""
  if not condition:
    raise ConfigError(f"config.{field} {message}")


def _positive(config: ml_collections.ConfigDict, prefix: str, *names: str) -> None:
  for name in names:
    value = config[name]
    require(value > 0, f"{prefix}.{name}", f"must be positive, got {value}.")


def _reraise(field: str, error: Exception) -> None:
  raise ConfigError(f"config.{field}: {error}") from error


def check_data(config: ml_collections.ConfigDict, prefix: str = "data") -> None:
  """Dataset name, builder settings and clip length."""
  require(config.name in BUILDERS, f"{prefix}.name",
          f"is {config.name!r}; known datasets: {sorted(BUILDERS)}.")
  make_config = BUILDERS[config.name][1]
  settings = dict(config.get("settings", {}))
  require(make_config is not None or not settings, f"{prefix}.settings",
          f"must be empty: {config.name} takes no settings.")
  if make_config is not None:
    try:
      make_config(**settings)
    except (TypeError, ValueError) as error:
      _reraise(f"{prefix}.settings", error)
  if config.get("num_samples") is not None:
    _positive(config, prefix, "num_samples")


def check_frontend(config: Any, prefix: str = "frontend") -> None:
  """Front-end settings, by building the front end (which validates every argument)."""
  if not config:
    return
  try:
    frontend.log_mel(**config)
  except (TypeError, ValueError) as error:
    _reraise(prefix, error)


def check_model(config: ml_collections.ConfigDict, prefix: str = "model") -> None:
  """Model name."""
  require(config.name in models.MODELS, f"{prefix}.name",
          f"is {config.name!r}; known models: {sorted(models.MODELS)}.")


def check_train(config: ml_collections.ConfigDict, prefix: str = "train") -> None:
  """Optimiser name, the positive numbers of the training loop, label smoothing and selection.

  Whether the dataset has the split `select_on` names is checked by `train.train`, which has the
  dataset.
  """
  require(callable(getattr(optax, config.optimizer, None)), f"{prefix}.optimizer",
          f"is {config.optimizer!r}, which is not an optax optimiser.")
  _positive(config, prefix, "learning_rate", "batch_size", "num_steps", "eval_batch_size",
            "log_every", "eval_every", "checkpoint_every", "keep_checkpoints", "lr_decay_steps",
            "lr_decay_rate")
  smoothing = config.get("label_smoothing", 0.0)
  require(0.0 <= smoothing < 1.0, f"{prefix}.label_smoothing",
          f"must be in [0, 1), got {smoothing}.")
  select_on = config.get("select_on")
  # The training split's rows in metrics.jsonl are the training batches' figures.
  require(select_on is None or (isinstance(select_on, str) and select_on not in ("", "train")),
          f"{prefix}.select_on", f"must name a held-out split such as 'valid', got {select_on!r}.")
  devices = config.get("num_devices")
  require(devices is None or devices >= 1, f"{prefix}.num_devices",
          f"must be at least 1 (or None for every device), got {devices}.")
  metric = config.get("select_metric", "loss")
  require(metric in model_selection.METRICS, f"{prefix}.select_metric",
          f"is {metric!r}; known metrics: {sorted(model_selection.METRICS)}.")


def check_classifier(config: ml_collections.ConfigDict) -> None:
  """Everything `soundjax.train.train` reads."""
  require(isinstance(config.seed, int) and config.seed >= 0, "seed",
          f"must be a non-negative integer, got {config.seed!r}.")
  check_data(config.data)
  check_frontend(config.get("frontend"))
  check_model(config.model)
  require(config.loss in losses.LOGIT_LOSSES, "loss",
          f"is {config.loss!r}; known losses: {sorted(losses.LOGIT_LOSSES)}.")
  check_train(config.train)
