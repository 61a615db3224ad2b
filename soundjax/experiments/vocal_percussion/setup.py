"""The vocal percussion experiment's config: its checks, the patch front end, the task of a label
level and each level's training config.
"""

from typing import Any, Dict, Sequence, Tuple, Union

import ml_collections
import numpy as np

from soundjax import data, models, training
from soundjax.checks import ConfigError, config_field, is_number, require
from soundjax.data.builders import synth_vocal_percussion as svp
from soundjax.experiments.vocal_percussion import baselines, classifiers, features
from soundjax.training import checks as training_checks

# The label levels an embedding CNN is trained on, and the class labels of each one's heads: one,
# or for the phoneme models two (onset and nucleus, their loss weighted by
# `config.phoneme_loss_weights`).
HEADS = {"instrument": "instrument", "instrument_reduced": "instrument_reduced",
         "syllable": "syllable", "syllable_reduced": "syllable_reduced",
         "phoneme": ("phoneme_onset", "phoneme_nucleus"),
         "phoneme_reduced": ("phoneme_onset_reduced", "phoneme_nucleus_reduced"),
         "boxeme": "boxeme"}
LEVELS = tuple(HEADS)
# The per-user classifiers always predict instruments (published: 4 in AVP, 3 in LVT).
EVALUATION_LABEL = "instrument"


def two_headed(level: str) -> bool:
  """Whether the level's model has two heads (onset, nucleus)."""
  return isinstance(HEADS[level], tuple)


def patch_frontend(config: ml_collections.ConfigDict):
  """The per-example `waveform -> [frames, mels]` patch front end of `config.patch`."""
  return features.patch_frontend(**config.patch.to_dict())


def level_config(config: ml_collections.ConfigDict, level: str,
                 seed: int) -> ml_collections.ConfigDict:
  """The `soundjax.training.train` config of one label level and seed.

  `config.train` with the level's changes of `config.level_train` (its learning rate, patience);
  the held-out users' records are excluded (`data.exclude`) from training and from the loop's
  evaluations alike.
  """
  train = {**config.train.to_dict(), **config.level_train[level].to_dict()}
  return ml_collections.ConfigDict({
      "seed": seed,
      "data": {**config.data.to_dict(), "label": HEADS[level],
               "exclude": {"user": [int(u) for u in config.held_out_users]}},
      "frontend": None,
      "model": config.model.to_dict(),
      "loss": config.loss,
      "loss_weights": tuple(config.phoneme_loss_weights) if two_headed(level) else None,
      "train": train,
  })


def task(config: ml_collections.ConfigDict, level: str,
         num_classes: Union[int, Tuple[int, ...]]) -> training.Task:
  """The embedding CNN of `num_classes` (a tuple: one head each) behind the patch front end,
  trained with `config.loss` (weighted over the heads of a two-head level)."""
  model = models.get_model(config.model.name, num_classes=num_classes,
                           **config.model.get("kwargs", {}))
  weights = tuple(config.phoneme_loss_weights) if two_headed(level) else None
  return training.Task(model, patch_frontend(config), config.loss, head_weights=weights)


def _distinct_integers(values: Sequence[Any], field: str, *, low: int = 0) -> None:
  values = tuple(values)
  require(len(values) > 0 and all(isinstance(v, int) and not isinstance(v, bool) and v >= low
                                  for v in values) and len(set(values)) == len(values), field,
          f"must be distinct integers >= {low}, at least one, got {values!r}.")


def num_users(config: ml_collections.ConfigDict) -> int:
  """Users of the dataset, known from the config alone (for the checks before preparing)."""
  if config.data.name == "synth_vocal_percussion":
    return int(config.data.settings.get("num_users", svp.SynthVocalPercussionConfig.num_users))
  from soundjax.data.builders import avp_lvt  # Only the real set's user list.
  return len(avp_lvt.USERS)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Fails at start, naming the field, on anything `run` would trip over later."""
  _distinct_integers(config.seeds, "seeds")
  require(config.data.name in ("synth_vocal_percussion", "avp_lvt"), "data.name",
          f"is {config.data.name!r}; the study reads 'synth_vocal_percussion' or 'avp_lvt'.")
  levels = tuple(config.levels)
  for level in levels:
    require(level in LEVELS, "levels", f"holds {level!r}, not a label level; use {LEVELS}.")
    require(level in config.level_train, "level_train",
            f"has no entry for level {level!r} (its learning rate at least).")
  require(len(levels) > 0 and len(set(levels)) == len(levels), "levels",
          f"must be distinct label levels, at least one, got {levels!r}.")
  weights = tuple(config.phoneme_loss_weights)
  require(len(weights) == 2 and all(is_number(w) and w > 0 for w in weights),
          "phoneme_loss_weights",
          f"must be two positive weights (onset, nucleus), got {weights!r}.")
  _distinct_integers(config.held_out_users, "held_out_users")
  users = num_users(config)
  require(max(config.held_out_users) < users, "held_out_users",
          f"holds user {max(config.held_out_users)}, but the dataset has users 0-{users - 1}.")
  require(len(config.held_out_users) < users, "held_out_users",
          f"holds every one of the {users} users: none is left to train the embeddings on.")
  require(config.frontend is None, "frontend",
          "must be None: the embedding CNN reads the patches of config.patch.")
  with config_field("patch"):
    frontend = patch_frontend(config)
  frames, mels = config.patch.num_frames, config.patch.n_mels
  factor = 2 ** len(config.model.get("kwargs", {}).get("channels", (8, 16, 32, 64)))
  require(frames % factor == 0 and mels % factor == 0, "patch",
          f"is {frames} frames x {mels} mels, which the CNN's pools need to be multiples of "
          f"{factor}.")
  del frontend
  require(config.model.name == "embedding_cnn", "model.name",
          f"is {config.model.name!r}; the study's embeddings come from 'embedding_cnn'.")
  for level in levels:  # The training loop's own checks, of each level's training config.
    unknown = sorted(set(config.level_train[level]) - set(config.train))
    require(not unknown, f"level_train.{level}",
            f"changes {unknown}, which config.train does not have.")
    try:
      training_checks.check_classifier(level_config(config, level, config.seeds[0]))
    except ConfigError as error:
      raise ConfigError(f"level {level!r} (config.train with config.level_train.{level}): "
                        f"{error}") from error
  with config_field("model.kwargs"):
    models.get_model(config.model.name, num_classes=2, **config.model.get("kwargs", {}))
  methods = tuple(config.classifiers.methods)
  require(len(methods) > 0 and all(m in classifiers.METHODS for m in methods)
          and len(set(methods)) == len(methods), "classifiers.methods",
          f"must be distinct names of {tuple(classifiers.METHODS)}, got {methods!r}.")
  base = config.baselines
  require(base.timbre is None or base.timbre in baselines.TIMBRE_SETTINGS, "baselines.timbre",
          f"is {base.timbre!r}; use one of {tuple(baselines.TIMBRE_SETTINGS)} or None.")
  for name in ("num_features", "num_trees", "num_repeats", "max_selection_records"):
    require(isinstance(base[name], int) and base[name] >= 1, f"baselines.{name}",
            f"must be a positive integer, got {base[name]!r}.")
  require(base.num_features <= baselines.ENGINEERED_DIMENSION, "baselines.num_features",
          f"is {base.num_features}, more than the {baselines.ENGINEERED_DIMENSION} features.")
  single = tuple(level for level in LEVELS if not two_headed(level))
  require(base.selection_label in single, "baselines.selection_label",
          f"is {base.selection_label!r}; use one of the single-label levels {single}.")
  clips = config.saliency.clips_per_instrument
  require(isinstance(clips, int) and clips >= 0, "saliency.clips_per_instrument",
          f"must be an integer >= 0 (0: no saliency maps), got {clips!r}.")
  require(isinstance(config.embed_batch_size, int) and config.embed_batch_size >= 1,
          "embed_batch_size", f"must be a positive integer, got {config.embed_batch_size!r}.")


def check_builder(config: ml_collections.ConfigDict,
                  builder) -> Dict[str, Union[int, Tuple[int, ...]]]:
  """Checks the prepared dataset against the config; returns each level's number of classes
  (of each head, for a two-head level)."""
  users = builder.info.features["user"].num_classes
  require(max(config.held_out_users) < users, "held_out_users",
          f"holds user {max(config.held_out_users)}, but {builder.name} has users 0-{users - 1}.")
  return {level: data.num_classes(builder, HEADS[level]) for level in config.levels}


def check_records(config: ml_collections.ConfigDict, users, is_train) -> None:
  """Each held-out user has test records and enough training records for every KNN's k."""
  ks = [classifiers.METHODS[m] for m in config.classifiers.methods
        if classifiers.METHODS[m] is not None]
  for user in config.held_out_users:
    mine = users == user
    num_train, num_test = int(np.sum(mine & is_train)), int(np.sum(mine & ~is_train))
    require(num_test > 0 and num_train >= max(ks, default=1), "held_out_users",
            f"holds user {user}, who has {num_train} isolated-take and {num_test} improvised "
            f"records; the protocol needs improvised ones and at least {max(ks, default=1)} "
            "isolated ones (the largest k of classifiers.methods).")
