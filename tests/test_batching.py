"""Chunked application of batched functions."""

import jax
import numpy as np
import pytest

from soundjax import batching


def test_chunked_pads_the_last_chunk_traces_once_and_keeps_pytrees():
  traces = []

  def double(x, y):
    traces.append(x.shape)
    return {"sum": 2 * x + y[:, None], "y": y}

  fn = batching.chunked(jax.jit(double), batch_size=2)
  x, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
  out = fn(x, y)
  np.testing.assert_array_equal(out["sum"], 2 * x + y[:, None])
  np.testing.assert_array_equal(out["y"], y)
  assert traces == [(2, 2)]


def test_chunked_takes_one_call_when_the_batch_is_small():
  np.testing.assert_array_equal(batching.chunked(lambda x: x + 1, 8)(np.zeros(3)), np.ones(3))


def test_chunked_passes_shared_arguments_whole_to_every_chunk():
  out = batching.chunked(lambda w, x: w["scale"] * x, 2, {"scale": np.float32(3)})(np.arange(5.0))
  np.testing.assert_array_equal(out, 3 * np.arange(5.0))


def test_chunked_rejects_a_bad_batch_size():
  with pytest.raises(ValueError, match="batch_size"):
    batching.chunked(lambda x: x, 0)
