"""Checks of a training config before anything runs: a bad value fails at start, naming its field.

The checks of dataset, front-end and model fields live here, above the registries they consult
(`data.builders.BUILDERS`, `frontend.log_mel`, `models.MODELS`), so experiments reuse them.
"""

from typing import Any

import ml_collections
import optax

from soundjax import frontend, losses, models
from soundjax.checks import config_field, is_integer, is_number, require, require_choice
from soundjax.data.builders import BUILDERS
from soundjax.training import plateau, selection


def _positive(config: ml_collections.ConfigDict, prefix: str, *names: str) -> None:
  for name in names:
    value = config[name]
    require(is_number(value) and value > 0, f"{prefix}.{name}", f"must be positive, got {value!r}.")


def check_data(config: ml_collections.ConfigDict, prefix: str = "data") -> None:
  """Dataset name, builder settings and clip length."""
  require_choice(config.name, BUILDERS, f"{prefix}.name", "datasets")
  make_config = BUILDERS[config.name][1]
  settings = dict(config.get("settings", {}))
  require(make_config is not None or not settings, f"{prefix}.settings",
          f"must be empty: {config.name} takes no settings.")
  if make_config is not None:
    with config_field(f"{prefix}.settings"):
      make_config(**settings)
  if config.get("num_samples") is not None:
    _positive(config, prefix, "num_samples")


def check_frontend(config: Any, prefix: str = "frontend") -> None:
  """Front-end settings, by building the front end (which validates every argument)."""
  if not config:
    return
  with config_field(prefix):
    frontend.log_mel(**config)


def check_model(config: ml_collections.ConfigDict, prefix: str = "model") -> None:
  """Model name."""
  require_choice(config.name, models.MODELS, f"{prefix}.name", "models")


def check_loss(name: str, field: str = "loss") -> None:
  """Loss name."""
  require_choice(name, losses.LOGIT_LOSSES, field, "losses")


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
  require_choice(metric, selection.METRICS, f"{prefix}.select_metric", "metrics")
  _check_plateau(config, prefix)


def _check_plateau(config: ml_collections.ConfigDict, prefix: str) -> None:
  """`reduce_on_plateau` and `early_stopping_patience` (`training.plateau`) need a selection."""
  spec, patience = config.get("reduce_on_plateau"), config.get("early_stopping_patience")
  for field, value in (("reduce_on_plateau", plateau.enabled(spec)),
                       ("early_stopping_patience", patience)):
    require(not value or config.get("select_on") is not None, f"{prefix}.{field}",
            "counts evaluations of the selection split: set train.select_on too.")
  require(patience is None or is_integer(patience, 1), f"{prefix}.early_stopping_patience",
          f"must be an integer >= 1 (evaluations) or None, got {patience!r}.")
  if not spec:
    return
  field = f"{prefix}.reduce_on_plateau"
  if spec.get("patience") is None:  # Off; its other settings are still checked.
    spec = {**dict(spec), "patience": 1}
  unknown = sorted(set(spec) - {"patience", *plateau.DEFAULTS})
  require(not unknown, field, f"has unknown keys {unknown}; it takes patience, factor and "
          "min_delta.")
  require(is_integer(spec.get("patience"), 1), f"{field}.patience",
          f"must be an integer >= 1 (evaluations), got {spec.get('patience')!r}.")
  factor = spec.get("factor", plateau.DEFAULTS["factor"])
  require(is_number(factor) and 0 < factor < 1, f"{field}.factor",
          f"must be in (0, 1), got {factor!r}.")
  delta = spec.get("min_delta", plateau.DEFAULTS["min_delta"])
  require(is_number(delta) and delta > 0, f"{field}.min_delta",
          f"must be positive (optax needs a tolerance), got {delta!r}.")


def check_heads(config: ml_collections.ConfigDict) -> None:
  """`loss_weights` (one per head) and `data.label` (one class label per head) go together."""
  weights, label = config.get("loss_weights"), config.data.get("label")
  several = isinstance(label, (list, tuple))
  if weights is None:
    require(not several, "data.label", f"names {len(label) if several else 0} labels {label!r}: "
            "a multi-head model also needs loss_weights, one weight per head.")
    return
  weights = tuple(weights)
  require(len(weights) > 0 and all(is_number(w) and w > 0 for w in weights), "loss_weights",
          f"must be positive numbers, one per head, got {weights!r}.")
  require(several and len(label) == len(weights), "data.label",
          f"must name one class label per weight of loss_weights {weights!r}, got {label!r}.")
  require(config.loss not in losses.MULTILABEL_LOSSES, "loss",
          f"is {config.loss!r}; a multi-head model takes one class index per head: use "
          "'softmax_cross_entropy'.")


def check_frame_targets(config: ml_collections.ConfigDict, prefix: str = "data") -> None:
  """The frame targets of a detector's events: `num_frames` and `frame_rate`, both positive."""
  targets = config.get("frame_targets")
  require(targets is not None, f"{prefix}.frame_targets",
          "must give num_frames and frame_rate of a detector's frame targets.")
  _positive(targets, f"{prefix}.frame_targets", "num_frames", "frame_rate")


def check_classifier(config: ml_collections.ConfigDict) -> None:
  """Everything `soundjax.train.train` reads (for a clip classifier or a frame-wise detector)."""
  require(isinstance(config.seed, int) and config.seed >= 0, "seed",
          f"must be a non-negative integer, got {config.seed!r}.")
  check_data(config.data)
  check_frontend(config.get("frontend"))
  check_model(config.model)
  check_loss(config.loss)
  detector = models.frame_wise(config.model.name)
  fitting, outputs = ((list(losses.MULTILABEL_LOSSES), "frame-wise logits") if detector else
                      (sorted(set(losses.LOGIT_LOSSES) - set(losses.MULTILABEL_LOSSES)),
                       "one row of logits per clip"))
  require(config.loss in fitting, "loss", f"is {config.loss!r}, but {config.model.name} "
          f"outputs {outputs}: use one of {fitting}.")
  if detector:
    check_frame_targets(config.data)
  check_heads(config)
  check_train(config.train)
