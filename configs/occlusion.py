"""Paper 1: occluding inputs by loss-gradient attributions, and when the occluded input wins.

  soundjax --config=configs/occlusion.py --workdir=runs/occlusion
  soundjax --config=configs/occlusion.py:quick --workdir=runs/occ_quick
  soundjax --config=configs/occlusion.py:jamendo --workdir=runs/occ_jamendo \
      --config.manual_dir=/path/to/jamendo
  soundjax --config=configs/occlusion.py:mnist --workdir=runs/occ_mnist \
      --config.manual_dir=$HOME/tensorflow_datasets

`config.data_dir` and `config.manual_dir` apply to every task (each task's `data` refers to
them): the manual folder holds Jamendo's `audio/`, `labels/`, `filelists/`, or for MNIST a TFDS
data_dir with `mnist/` prepared in array_record format (see `soundjax/data/builders`).

Every task trains `num_models` models (seeds `seed`, `seed + 1`, ...) and sweeps, per
attribution method, fractions x replacement values x directions on the test examples. What is
occluded is the MODEL INPUT: the log-mel spectrogram for sound models (the front end runs once,
before attribution), the normalised image for digit models. Dataset statistics (mean, min, std)
are of that input over the training split.
"""

import ml_collections
from ml_collections import config_dict

from configs import common
from soundjax import attribution

# Every attribution method of the library (the paper's five and the random control).
METHODS = tuple(attribution.METHODS)
# Paper 1's replacements: the dataset mean (`mean`), the dataset minimum (`dataset_min`), 3 x the
# example's minimum (`image_min`), the example's maximum (`image_max`); plus Gaussian noise with
# the dataset's mean and standard deviation.
REPLACEMENTS = ("mean", "dataset_min", "example_min", "example_max", "noise")
# 10 ... 90 % as published, and 99 % for their last level (9100 of 9200 bins, 782 of 784 pixels).
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)


def _task(data, frontend, model, loss, train, *, metric="accuracy", num_examples=1000,
          statistics_examples=None, **extra) -> ml_collections.ConfigDict:
  """One task: what `training.train` reads, the metric, how many test examples to sweep, and how
  many (shuffled) training examples give the input statistics (None: all)."""
  config = ml_collections.ConfigDict(dict(
      data=data, frontend=frontend, model=ml_collections.ConfigDict(model), loss=loss,
      train=train, metric=metric, num_examples=num_examples, **extra))
  config.statistics_examples = config_dict.placeholder(int)
  config.statistics_examples = statistics_examples
  return config


def _digits(classes, loss, *, source="sklearn", quick=False):
  """Paper 1's MNIST `Net` (smaller for the 8x8 digits) in one of the three set-ups."""
  # Z-scored pixels as in the paper (MNIST: (x - 0.1307) / 0.3081): the dataset mean is ~0 and
  # the dataset minimum, a black pixel, is negative, so the replacements differ from each other.
  settings = {"source": source, "normalize": True}
  if classes is not None:
    settings["classes"] = classes
  model = {"name": "digits_cnn", "kwargs": {"features": (32, 64), "hidden": 128}}
  if source == "sklearn":  # 8x8 images: a quarter of the widths learns them as well.
    model["kwargs"] = {"features": (8, 16), "hidden": 32} if quick else {
        "features": (16, 32), "hidden": 64}
  if source == "mnist":  # Published: Adadelta 1.0, x0.7 per epoch (938 steps of 64), 14 epochs.
    train = common.train_config(optimizer="adadelta", learning_rate=1.0, lr_decay_rate=0.7,
                                lr_decay_steps=938, batch_size=64, num_steps=14 * 938,
                                eval_every=938, checkpoint_every=938)
  else:
    train = common.train_config(batch_size=32, num_steps=150 if quick else 800, log_every=50,
                                eval_every=400, checkpoint_every=200,
                                learning_rate=3e-3 if quick else 1e-3)
  return _task(common.data_config("digits", **settings), None, model, loss, train,
               num_examples=100 if quick else 1000)


def _sound(quick=False):
  """Synthetic sound events, log-mel input, a VGG-style CNN (the default sound task)."""
  if quick:
    data = common.data_config("synth_events", sample_rate=8000, clip_seconds=0.5, num_train=480,
                              num_test=120, seed=0)
    frontend = common.frontend_config(sample_rate=8000, n_fft=256, hop_length=128, n_mels=32)
    # BatchNorm statistics that forget their start (0.99**240 of it would remain at the
    # published momentum) and a high rate: ~0.87 test accuracy in 240 steps (0.54-0.63 with
    # momentum 0.99 and rate 3e-3; chance 0.08).
    model = {"name": "vgg", "kwargs": {"channels": (8, 16), "bn_momentum": 0.9}}
    train = common.train_config(batch_size=32, num_steps=240, learning_rate=1e-2, log_every=60,
                                eval_every=1000, checkpoint_every=240)
  else:
    data = common.data_config("synth_events", sample_rate=16000, clip_seconds=1.0,
                              num_train=2400, num_test=600, seed=0)
    frontend = common.frontend_config(sample_rate=16000, n_fft=512, hop_length=256, n_mels=40)
    model = {"name": "vgg", "kwargs": {"channels": (16, 32, 64)}}
    train = common.train_config(num_steps=1000)
  return _task(data, frontend, model, "softmax_cross_entropy", train,
               num_examples=120 if quick else 1000)


def _jamendo():
  """Singing-voice detection as published: Schlüter's CNN on 115 x 80 normalised log-mel excerpts.

  Training follows `train_singing.py`: SGD Nesterov 0.9, lr 0.01 x 0.85 per epoch of 2000
  batches of 32, 20 epochs, binary cross-entropy on labels smoothed to 0.02 + 0.96 y, and the
  model of the epoch with the lowest frame error on the validation songs. (The published code
  took each epoch's error at the threshold best for it; here it is at probability 0.5.)
  """
  train = common.train_config(optimizer="sgd", optimizer_kwargs={"momentum": 0.9, "nesterov": True},
                              learning_rate=0.01, lr_decay_rate=0.85, lr_decay_steps=2000,
                              batch_size=32, num_steps=40000, checkpoint_every=2000,
                              eval_batch_size=512,
                              # y (1 - 0.04) + 0.04 / 2 = 0.02 + 0.96 y.
                              label_smoothing=0.04,
                              # Validation error after every epoch, as published.
                              select_on="valid", select_metric="accuracy", eval_every=2000)
  return _task(common.data_config("jamendo"), None,
               {"name": "schlueter_cnn", "kwargs": {}},
               "sigmoid_binary_cross_entropy", train, metric="detection",
               # 700 frames (10 s) from the middle of each test song: 11,200 excerpts; input
               # statistics from 20,000 random training excerpts (of about a million).
               num_examples=700, statistics_examples=20000, excerpt_frames=115,
               median_frames=56)


# The `arg`s get_config takes (`soundjax.experiments.load_config` lists them).
VARIANTS = ("", "quick", "jamendo", "mnist")


def get_config(arg: str = ""):
  config = ml_collections.ConfigDict()
  config.experiment = "occlusion"
  config.seed = 0
  config.num_models = 5  # the paper averaged 5 independently trained models
  config.data_dir = common.DATA_DIR  # every task's TFDS data_dir (a reference, see below)
  config.manual_dir = config_dict.placeholder(str)  # every task's manual download folder
  config.attribution = ml_collections.ConfigDict(dict(
      methods=METHODS, fractions=FRACTIONS, replacements=REPLACEMENTS,
      directions=("positive", "negative"),
      ig_steps=64,            # integrated gradients: trapezoid intervals, baseline = dataset mean
      smoothgrad_samples=16,  # SmoothGrad of the signed gradient ...
      smoothgrad_noise=0.15,  # ... noise std as a share of the training inputs' range (Smilkov)
      example_batch_size=100,  # examples per compiled call (the last chunk is padded)
      curve_fractions=tuple(i / 10 for i in range(11)),  # deletion / insertion curves ...
      curve_replacement="mean",                          # ... filling with this value
      num_maps=4,             # test examples drawn with their attribution maps
  ))
  # Cells per lax.map chunk (None: one vmap of all). On CPU one at a time ran fastest: 1.3x the
  # passes the sweep needs, against 1.6x for 6 (scripts/bench_attribution.py).
  config.attribution.cell_batch_size = config_dict.placeholder(int)
  config.attribution.cell_batch_size = 1
  # IG path points / SmoothGrad samples per lax.map chunk (None: one vmap of all). XLA:CPU runs
  # conv input gradients ~3x slower inside loops, so on CPU all at once is fastest.
  config.attribution.path_batch_size = config_dict.placeholder(int)
  if arg == "":
    config.tasks = ml_collections.ConfigDict({
        "sound": _sound(),
        "digits_10": _digits(None, "softmax_cross_entropy"),
        "digits_01_softmax": _digits((0, 1), "softmax_cross_entropy"),
        "digits_01_sigmoid": _digits((0, 1), "sigmoid_binary_cross_entropy"),
    })
  elif arg == "quick":
    # Minutes on two CPU cores, most of it compiling: one sound task and two of the three
    # digit set-ups (the 0 vs 1 softmax one is in the default variant).
    config.tasks = ml_collections.ConfigDict({
        "sound": _sound(quick=True),
        "digits_10": _digits(None, "softmax_cross_entropy", quick=True),
        "digits_01_sigmoid": _digits((0, 1), "sigmoid_binary_cross_entropy", quick=True),
    })
    config.num_models = 2
    # All cells in one vmap: at this size compiling, not running, is what takes the time.
    config.attribution.update(ig_steps=8, smoothgrad_samples=4, example_batch_size=120,
                              cell_batch_size=None, curve_fractions=(0.0, 0.25, 0.5, 0.75, 1.0),
                              num_maps=3)
  elif arg == "jamendo":
    config.tasks = ml_collections.ConfigDict({"singing_voice": _jamendo()})
    # For a GPU: 256 excerpts x 10 cells (or x 8 path points) of Schlueter's CNN per step.
    config.attribution.update(example_batch_size=256, cell_batch_size=10, path_batch_size=8)
  elif arg == "mnist":
    config.tasks = ml_collections.ConfigDict({
        "mnist_10": _digits(None, "softmax_cross_entropy", source="mnist"),
        "mnist_01_softmax": _digits((0, 1), "softmax_cross_entropy", source="mnist"),
        "mnist_01_sigmoid": _digits((0, 1), "sigmoid_binary_cross_entropy",
                                    source="mnist"),
    })
  else:
    raise ValueError(f"Unknown variant {arg!r} of configs/occlusion.py; use '', 'quick', "
                     "'jamendo' or 'mnist'.")
  for task in config.tasks.values():
    task.data.data_dir = config.get_ref("data_dir")
    task.data.manual_dir = config.get_ref("manual_dir")
  return config
