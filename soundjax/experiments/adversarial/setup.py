"""The adversarial experiment's config: its checks, per-victim training configs, and the clips
and targets it attacks (its attacks are built by name in `builders.py`).
"""

import inspect
from typing import Any, Dict, Optional, Sequence, Tuple

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from soundjax import attacks, checks, data, models
from soundjax.checks import ConfigError, config_field, require, require_choice
from soundjax.experiments.adversarial import builders, sanity
from soundjax.training import checks as training_checks

ALWAYS_TARGETED = ("lbfgs",)  # its `y` is the target class
# Untargeted only: DeepFool leaves the prediction, white noise ignores `y`, Square's margin loss
# has no targeted form here.
NEVER_TARGETED = ("deepfool", "white_noise", "square")
# All five victims read the waveform: log-mel models through `config.frontend`.
VICTIM_KINDS = ("logmel", "waveform")


def victim_config(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """The `soundjax.training.train` config of victim `name`: shared settings plus its own."""
  spec = config.models[name]
  settings = ml_collections.ConfigDict(config.train.to_dict())
  settings.update(builders.as_dict(spec.get("train")))
  waveform_in = models.input_kind(name) == "waveform"
  return ml_collections.ConfigDict({
      "seed": config.seed,
      "data": config.data.to_dict(),
      "frontend": None if waveform_in else config.frontend.to_dict(),
      "model": {"name": name, "kwargs": builders.as_dict(spec.get("kwargs"))},
      "loss": config.loss,
      "train": settings,
  })


def _unused(*args):
  raise AssertionError("factories must not call the model while they are built")


def _check_builds(spec, field: str, bounds, **overrides) -> None:
  try:
    builders.build_attack(spec, _unused, _unused, bounds, **overrides)
  except (TypeError, ValueError) as error:
    raise ConfigError(f"config.{field}.kwargs: {error}") from error


def _check_attacks(config: ml_collections.ConfigDict) -> None:
  require(len(config.attacks) > 0, "attacks", "must name at least one attack.")
  for label, spec in config.attacks.items():
    field = f"attacks.{label}"
    require_choice(spec.get("attack"), attacks.ATTACKS, f"{field}.attack", "attacks")
    targeted = spec.get("targeted", False)
    require(not (targeted and spec.attack in NEVER_TARGETED), f"{field}.targeted",
            f"must be False: {spec.attack} is untargeted.")
    require(targeted or spec.attack not in ALWAYS_TARGETED, f"{field}.targeted",
            f"must be True: {spec.attack} is a targeted attack.")
    per_class = spec.get("per_class")
    require(per_class is None or per_class >= 1, f"{field}.per_class",
            f"must be at least 1 (or None for every attacked clip), got {per_class}.")
    _check_builds(spec, field, config.bounds)
  for field, label in (("main_attack", config.main_attack),
                       ("robustness.attack", config.robustness.attack)):
    require(label in config.attacks, field,
            f"is {label!r}, which is not in config.attacks ({', '.join(config.attacks)}).")
    require(not config.attacks[label].get("targeted", False), field,
            f"must name an untargeted attack; {label!r} is targeted.")
    require(config.attacks[label].get("per_class") is None, field,
            f"names {label!r}, whose per_class is set: it must attack every clip.")


def _check_curve_builds(config: ml_collections.ConfigDict, field: str, *levels: Any) -> None:
  """Raises `ConfigError` naming `field` unless the curve attack builds with its configured
  kwargs, and every curve of `builders.curve_makers` at each of `levels`."""
  try:
    builders.curve_attack(config, _unused, _unused)
    for make in builders.curve_makers(config, _unused, _unused).values():
      for value in levels:
        make(value)
  except (TypeError, ValueError) as error:
    raise ConfigError(f"config.{field}: {error}") from error


def _check_robustness(config: ml_collections.ConfigDict) -> None:
  curve = config.robustness
  spec = config.attacks[curve.attack]
  require(builders.takes(spec.attack, curve.param), "robustness.param",
          f"is {curve.param!r}, which {spec.attack} does not take.")
  require(len(curve.levels) > 0, "robustness.levels", "must hold at least one value.")
  require_choice(curve.get("step_rule"), builders.STEP_RULES, "robustness.step_rule",
                 "step rules")
  with config_field("robustness.step_factor"):
    checks.positive("step_factor", curve.get("step_factor"))
  require(curve.step_rule == "fixed" or not builders.takes(spec.attack, "step_size") or
          spec.attack in builders.STEERED, "robustness.step_rule",
          f"is 'madry', which sets the step of {', '.join(builders.STEERED)} only, not of "
          f"{spec.attack}; use 'fixed' (its own step_size).")
  thresholds = builders.as_dict(curve.get("sanity"))
  require(set(thresholds) == set(sanity.THRESHOLDS), "robustness.sanity",
          f"must set exactly {', '.join(sanity.THRESHOLDS)}, got {sorted(thresholds)}.")
  for name, value in thresholds.items():
    with config_field(f"robustness.sanity.{name}"):
      checks.in_interval(name, value, 0.0, 1.0)
  _check_curve_builds(config, "robustness.kwargs")
  _check_curve_builds(config, "robustness.levels", *curve.levels)


def _check_auto_attack(config: ml_collections.ConfigDict) -> None:
  spec, curve = config.auto_attack, config.robustness
  if not spec.enabled:
    return
  require(curve.param in inspect.signature(attacks.auto_attack).parameters, "robustness.param",
          f"is {curve.param!r}, which attacks.auto_attack does not take (config.auto_attack "
          "runs at each level of the curve).")
  for value in curve.levels:
    try:
      builders.build_auto_attack(spec, _unused, _unused, config.bounds, **{curve.param: value})
    except (TypeError, ValueError) as error:
      raise ConfigError(f"config.auto_attack: {error}") from error


def _victims() -> list:
  """Clip classifiers of the waveform or log-mels (not the frame-wise detectors)."""
  return sorted(n for n in models.MODELS
                if models.input_kind(n) in VICTIM_KINDS and not models.frame_wise(n))


def _check_models(config: ml_collections.ConfigDict) -> None:
  require(len(config.models) > 0, "models", "must name at least one model.")
  for name, spec in config.models.items():
    field = f"models.{name}"
    require(name in _victims(), field, f"is not a sound classifier; known: {_victims()}.")
    kwargs = builders.as_dict(spec.get("kwargs"))
    try:
      models.get_model(name, num_classes=2, **kwargs)
    except (TypeError, ValueError) as error:
      raise ConfigError(f"config.{field}.kwargs: {error}") from error
    rate = kwargs.get("sample_rate", config.frontend.sample_rate)
    require(rate == config.frontend.sample_rate, f"{field}.kwargs.sample_rate",
            f"is {rate}, but config.frontend.sample_rate is {config.frontend.sample_rate}.")
    training_checks.check_train(victim_config(config, name).train, f"{field}.train")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the first field of `config` that cannot work."""
  require(isinstance(config.seed, int) and config.seed >= 0, "seed",
          f"must be a non-negative integer, got {config.seed!r}.")
  training_checks.check_data(config.data)
  require(bool(config.get("frontend")), "frontend",
          "must be set: log-mel models and the spectrogram figures use it.")
  training_checks.check_frontend(config.frontend)
  rate = config.data.settings.get("sample_rate", config.frontend.sample_rate)
  require(rate == config.frontend.sample_rate, "frontend.sample_rate",
          f"is {config.frontend.sample_rate}, but config.data.settings.sample_rate is {rate}.")
  require(config.loss == "softmax_cross_entropy", "loss",
          f"must be 'softmax_cross_entropy' (confidences are softmax), got {config.loss!r}.")
  training_checks.check_train(config.train)
  _check_models(config)
  require(len(config.bounds) == 2 and config.bounds[0] < config.bounds[1], "bounds",
          f"must be (lo, hi) with lo < hi, got {config.bounds!r}.")
  require(config.clips.per_class >= 1, "clips.per_class",
          f"must be at least 1, got {config.clips.per_class}.")
  max_clips = config.clips.get("max_clips")
  require(max_clips is None or max_clips >= 1, "clips.max_clips",
          f"must be at least 1 (or None for no cap), got {max_clips}.")
  require(0 < config.targeted_confidence <= 1, "targeted_confidence",
          f"must be in (0, 1], got {config.targeted_confidence}.")
  require(config.attack_batch_size >= 1, "attack_batch_size",
          f"must be at least 1, got {config.attack_batch_size}.")
  require(config.num_examples >= 0, "num_examples",
          f"must be non-negative, got {config.num_examples}.")
  _check_attacks(config)
  _check_robustness(config)
  _check_auto_attack(config)


def resolve_targets(targets: Sequence[Any], class_names: Sequence[str]) -> Tuple[int, ...]:
  """Class indices of `config.targets` (names or indices)."""
  resolved = []
  for target in targets:
    index = class_names.index(target) if target in class_names else target
    require(isinstance(index, (int, np.integer)) and 0 <= index < len(class_names), "targets",
            f"holds {target!r}, which is neither a class name nor an index below "
            f"{len(class_names)}.")
    resolved.append(int(index))
  require(len(set(resolved)) == len(resolved), "targets", f"repeats a class: {list(targets)}.")
  return tuple(resolved)


def first_per_class(labels: np.ndarray, per_class: Optional[int]) -> np.ndarray:
  """Indices of the first `per_class` entries of each class in `labels`, in order (all of them
  when `per_class` is None): the clips an attack with `per_class` set runs on."""
  if per_class is None:
    return np.arange(len(labels))
  rank = np.array([np.sum(labels[:i] == label) for i, label in enumerate(labels)], np.int64)
  return np.flatnonzero(rank < per_class)


def attack_pairs(labels: np.ndarray, targets: Tuple[int, ...],
                 num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
  """`(clip index, target class)` of every targeted attack to run.

  With no targets each clip of class y is attacked towards (y + 1) % C; otherwise each clip is
  attacked towards every target but its own label, as in the paper's targeted scripts.
  """
  if not targets:
    return np.arange(len(labels)), (labels + 1) % num_classes
  clip = np.repeat(np.arange(len(labels)), len(targets))
  target = np.tile(np.asarray(targets), len(labels))
  keep = target != labels[clip]
  return clip[keep], target[keep]


def select_clips(builder: tfds.core.DatasetBuilder, clips: ml_collections.ConfigDict,
                 num_samples: Optional[int]) -> Dict[str, np.ndarray]:
  """The first `clips.per_class` clips of each class of `clips.split`, in file order.

  Returns:
    `{"x": float32 [clips, samples], "y": int32 [clips], "index": record indices}`.
  """
  x_key, y_key = builder.info.supervised_keys
  if clips.verified_only:
    require("manually_verified" in builder.info.features, "clips.verified_only",
            f"is True, but {builder.name} has no manually_verified feature.")
  source = data.split_source(builder, clips.split)
  counts = np.zeros(data.num_classes(builder), np.int64)
  chosen = []
  for index in range(len(source)):
    if np.all(counts >= clips.per_class):
      break
    record = source[index]
    label = int(record[y_key])
    if counts[label] >= clips.per_class or (clips.verified_only and
                                            not record["manually_verified"]):
      continue
    counts[label] += 1
    x = np.asarray(record[x_key], np.float32)
    chosen.append((index, data.fit_length(x, num_samples) if num_samples else x, label))
  chosen = chosen[:clips.get("max_clips") or len(chosen)]
  require(len(chosen) > 0, "clips.split", f"{clips.split!r} has no clips to attack.")
  return {"x": np.stack([c[1] for c in chosen]), "y": np.asarray([c[2] for c in chosen], np.int32),
          "index": np.asarray([c[0] for c in chosen])}
