"""Defaults shared by every experiment config: data, front end, model, loss and training."""

import os

import ml_collections
from ml_collections import config_dict

from soundjax.training import plateau

# Prepared datasets live here; real datasets' downloads go in <DATA_DIR>/downloads/manual/<name>.
DATA_DIR = os.environ.get("SOUNDJAX_DATA_DIR", "data")


def data_config(name: str = "synth_events", **settings) -> ml_collections.ConfigDict:
  """A dataset by builder name with its builder settings (see `soundjax/data/builders`)."""
  return ml_collections.ConfigDict({
      "name": name,
      "data_dir": DATA_DIR,
      "manual_dir": config_dict.placeholder(str),
      "settings": settings,
      # Audio of varying length is cut or zero-padded to this many samples (None: fixed length).
      "num_samples": config_dict.placeholder(int),
  })


def frontend_config(*, sample_rate: int, n_fft: int, hop_length: int,
                    n_mels: int, **extra) -> ml_collections.ConfigDict:
  """Log-mel front end settings (`soundjax.frontend.log_mel` keyword arguments)."""
  # Listed so that `--config.<...>.precise=True` (the double-float FFT) is a flag.
  extra.setdefault("precise", False)
  return ml_collections.ConfigDict(dict(sample_rate=sample_rate, n_fft=n_fft,
                                        hop_length=hop_length, n_mels=n_mels, **extra))


def train_config(**overrides) -> ml_collections.ConfigDict:
  """Optimiser, schedule, batching, logging and checkpointing of `soundjax.train.train`."""
  config = ml_collections.ConfigDict({
      "optimizer": "adam",        # any optax optimiser taking the learning rate first
      "optimizer_kwargs": {},
      "learning_rate": 1e-3,
      "lr_decay_rate": 1.0,       # staircase decay by this factor ...
      "lr_decay_steps": 1,        # ... every this many steps
      "batch_size": 32,
      "num_steps": 1000,
      "eval_batch_size": 256,
      "log_every": 50,
      "eval_every": 500,
      "checkpoint_every": 100,
      "keep_checkpoints": 2,
      # Training targets (1 - a) one_hot + a / K (sigmoid: y (1 - a) + a / 2); 0: the labels.
      "label_smoothing": 0.0,
      # A held-out split (e.g. "valid") evaluated every eval_every steps and at the end: the
      # state with the best select_metric on it ("loss" or "accuracy") is returned. None: the
      # last state.
      "select_on": config_dict.placeholder(str),
      "select_metric": "loss",
      # With select_on: reduce_on_plateau cuts the rate by `factor` after `patience`
      # evaluations without an improvement of more than `min_delta`; early_stopping_patience p
      # ends training p evaluations after the best (Keras' ReduceLROnPlateau and EarlyStopping).
      # A patience of None: off.
      "reduce_on_plateau": {"patience": config_dict.placeholder(int), **plateau.DEFAULTS},
      "early_stopping_patience": config_dict.placeholder(int),
      # Data parallel over the first num_devices local devices (None: all); batch_size must be
      # a multiple of it.
      "num_devices": config_dict.placeholder(int),
  })
  config.update(overrides)
  return config


def base_config() -> ml_collections.ConfigDict:
  """A complete classification config: VGG-style CNN on log-mels of `synth_events`."""
  config = ml_collections.ConfigDict()
  config.experiment = "classification"
  config.seed = 0
  # 16 kHz, 1 s clips: the synthetic events stay below 8 kHz, so 16 kHz loses nothing.
  config.data = data_config("synth_events", sample_rate=16000, clip_seconds=1.0, num_train=2400,
                            num_test=600, seed=0)
  config.frontend = frontend_config(sample_rate=16000, n_fft=512, hop_length=256, n_mels=40)
  config.model = ml_collections.ConfigDict({"name": "vgg", "kwargs": {}})
  config.loss = "softmax_cross_entropy"
  config.train = train_config()
  return config
