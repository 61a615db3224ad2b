"""Test-wide settings and shared fixtures.

Rank promotion raises, so silent broadcasting fails loudly. (Strict dtype promotion would too, but
optax's own Adam update does not pass it.)"""

import atexit
import os
import shutil
import tempfile

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
# Partitionable threefry (the default) compiles random ops ~5x slower on XLA:CPU (2.2 s vs 0.24 s
# for one jax.random.normal here); it only matters for random numbers sharded across devices.
jax.config.update("jax_threefry_partitionable", False)
# Many tests build the same small models again (a new closure misses jit's in-memory cache): the
# persistent cache, fresh per test run, serves the repeats. pytest-xdist's workers inherit the
# folder from the controller's environment, so a program one worker compiled serves the other
# (a half-written entry read meanwhile is a warning and a recompile); the controller, which made
# it, removes it when it exits last. Tests of "compiles once" count traces (`_cache_size`),
# which the cache does not change.
_JAX_CACHE = os.environ.get("SOUNDJAX_TEST_JAX_CACHE")
if _JAX_CACHE is None:
  _JAX_CACHE = os.environ["SOUNDJAX_TEST_JAX_CACHE"] = tempfile.mkdtemp(
      prefix="soundjax-jax-cache-")
  atexit.register(shutil.rmtree, _JAX_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

import pytest  # pylint: disable=g-import-not-at-top

from soundjax import data  # pylint: disable=g-import-not-at-top
from tests.toys import TINY_SOUNDSCAPES, TINY_SYNTH  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """A TFDS data_dir holding the tiny `synth_events` set, built once per test session."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  data.prepare("synth_events", data_dir=data_dir, **TINY_SYNTH)
  return data_dir


@pytest.fixture
def tiny_synth_settings() -> dict:
  """The builder settings of the set in `tiny_data_dir`."""
  return dict(TINY_SYNTH)


@pytest.fixture(scope="session")
def tiny_soundscapes_dir(tmp_path_factory) -> str:
  """A TFDS data_dir holding the tiny `synth_soundscapes` set (`toys.TINY_SOUNDSCAPES`)."""
  data_dir = str(tmp_path_factory.mktemp("tfds_soundscapes"))
  data.prepare("synth_soundscapes", data_dir=data_dir, **TINY_SOUNDSCAPES)
  return data_dir
