"""The README's first command: train a small CNN on synthetic sound events and report it.

  soundjax --config=configs/quickstart.py --workdir=runs/quickstart
"""

from configs import classification


def get_config(arg: str = ""):
  del arg  # The quickstart has one size: minutes on two CPU cores.
  return classification.get_config("quick")
