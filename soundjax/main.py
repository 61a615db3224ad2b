"""Command line entry point: `soundjax --config=configs/x.py[:variant] --workdir=DIR`.

Any config field can be overridden, e.g. `--config.train.num_steps=200`. The experiment the
config names (`config.experiment`) is imported from `soundjax.experiments` and run.

A multi-process (multi-host) run starts the same command on every process with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (or the environment variables
`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`); see `parallel.initialize`.
"""

import importlib
import logging
import os
import re
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from soundjax import checks, parallel, report
from soundjax.data.audio import AudioError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints and results.")
_JAX_CACHE = flags.DEFINE_string(
    "jax_cache", os.environ.get("SOUNDJAX_JAX_CACHE", os.path.join(".cache", "jax")),
    "Folder of JAX's persistent compilation cache ('' for none).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0 in a multi-process run (default: "
    "$JAX_COORDINATOR_ADDRESS; unset: one process).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None,
                                      "Processes in a multi-process run ($JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None,
                                   "This process's index in a multi-process run ($JAX_PROCESS_ID).")
flags.mark_flags_as_required(["config", "workdir"])
# Programs that took longer than this to compile are kept in the cache.
_CACHE_MIN_COMPILE_SECONDS = 0.5


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.getLogger("absl").setLevel(logging.WARNING)
  # Before anything asks JAX for its devices.
  parallel.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if jax.default_backend() == "cpu":
    # Partitionable threefry (the default) compiles random ops ~5x slower on XLA:CPU; it only
    # pays off for random numbers sharded across accelerators.
    jax.config.update("jax_threefry_partitionable", False)
  if _JAX_CACHE.value:
    # Seeds, re-runs and the quickstart's stages compile the same programs again (a new closure
    # misses jit's in-memory cache); the persistent cache serves them in a fraction of the time.
    jax.config.update("jax_compilation_cache_dir", _JAX_CACHE.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _CACHE_MIN_COMPILE_SECONDS)
  try:
    config = _CONFIG.value
    name = config.experiment  # Loads the file, or raises.
  except OSError as error:  # ml_collections loads the file lazily; the cause says why it failed.
    sys.exit(f"soundjax: error: {_flag_error(error.__cause__ or error, [])}")
  try:
    experiment = importlib.import_module(f"soundjax.experiments.{name}")
  except ModuleNotFoundError:
    sys.exit(f"soundjax: error: config.experiment is {name!r}, which is not a "
             "module of soundjax/experiments.")
  try:
    experiment.run(config, _WORKDIR.value)
    # Every process holds the same results; one writes the report.
    page = report.write_html_report(_WORKDIR.value) if jax.process_index() == 0 else None
  except (checks.ConfigError, AudioError, FileNotFoundError) as error:
    sys.exit(f"soundjax: error: {error}")
  if page is not None:
    print(f"Results are in {_WORKDIR.value}; open {page} in a browser.")


def _flag_error(error: Exception, argv) -> str:
  """One line for a flag that did not parse: a config file's own error (e.g. an unknown variant),
  or a `--config.x` override naming no field, with ml_collections' closest match."""
  text = str(error)
  if isinstance(error, (KeyError, AttributeError)):
    key = re.search(r"'(\w+)", text)
    key = key.group(1) if key else text
    override = next((a.split("=")[0] for a in argv if a.startswith("--config.") and key in a), key)
    hint = re.search(r'Did you mean "(\w+)"', text)
    return f"{override} names no config field" + (f" (did you mean {hint.group(1)!r}?)" if hint
                                                  else ".")
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _parse_flags(argv):
  """absl's flag parsing, with a bad config file, variant or override as one line, no traceback."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, KeyError, AttributeError, ValueError, OSError) as error:
    sys.exit(f"soundjax: error: {_flag_error(error, argv)}")


def cli() -> None:
  """Console script `soundjax`."""
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  cli()
