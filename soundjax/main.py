"""Command line entry point: `soundjax --config=configs/x.py[:variant] --workdir=DIR`.

Any config field can be overridden, e.g. `--config.train.num_steps=200`. The experiment the
config names (`config.experiment`) is imported from `soundjax.experiments` and run.
"""

import importlib
import logging
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from soundjax import checks, report
from soundjax.data.audio import AudioError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.getLogger("absl").setLevel(logging.WARNING)
  if jax.default_backend() == "cpu":
    # Partitionable threefry (the default) compiles random ops ~5x slower on XLA:CPU; it only
    # pays off for random numbers sharded across accelerators.
    jax.config.update("jax_threefry_partitionable", False)
  config = _CONFIG.value
  try:
    experiment = importlib.import_module(f"soundjax.experiments.{config.experiment}")
  except ModuleNotFoundError:
    sys.exit(f"soundjax: error: config.experiment is {config.experiment!r}, which is not a "
             "module of soundjax/experiments.")
  try:
    experiment.run(config, _WORKDIR.value)
    page = report.write_html_report(_WORKDIR.value)
  except (checks.ConfigError, AudioError, FileNotFoundError) as error:
    sys.exit(f"soundjax: error: {error}")
  print(f"Results are in {_WORKDIR.value}; open {page} in a browser.")


def cli() -> None:
  """Console script `soundjax`."""
  app.run(main)


if __name__ == "__main__":
  cli()
