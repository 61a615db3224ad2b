"""Train and evaluate one sound classifier.

  soundjax --config=configs/classification.py --workdir=runs/classification
  soundjax --config=configs/classification.py:quick --workdir=runs/cls_quick
  soundjax --config=configs/classification.py --config.model.name=crnn --workdir=runs/crnn
"""

from configs import common

# The `arg`s get_config takes (`soundjax.experiments.load_config` lists them).
VARIANTS = ("", "quick")


def get_config(arg: str = ""):
  config = common.base_config()
  # Published VGG13 widths are (64, 128, 256, 512, 512); a third of that trains on a laptop.
  config.model.kwargs = {"channels": (16, 32, 64, 128)}
  config.train.num_steps = 1500
  if arg == "quick":
    config.data.settings.num_train = 1200
    config.data.settings.num_test = 360
    config.model.kwargs = {"channels": (16, 32, 64)}
    config.train.num_steps = 300
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of configs/classification.py; use '' or 'quick'.")
  return config
