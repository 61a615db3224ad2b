"""Running a batched, jitted function over many examples in fixed-size chunks."""

from typing import Any, Callable

import jax
import numpy as np


def chunked(fn: Callable[..., Any], batch_size: int) -> Callable[..., Any]:
  """Applies batched `fn` to its arguments' leading axis in chunks of at most `batch_size`.

  The last chunk is filled up with repeats of the first examples, so that a jitted `fn`
  compiles once per chunk size; the extra outputs are dropped.

  Args:
    fn: `fn(*arrays) -> outputs`, a pytree of arrays whose leading axis is the batch.
    batch_size: examples per call, >= 1.

  Returns:
    `apply(*arrays) -> outputs` for all examples, as numpy arrays.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}.")

  def apply(*arrays):
    total = len(arrays[0])
    size = min(batch_size, total)
    index = np.arange(-(-total // size) * size) % total
    parts = [jax.tree.map(np.asarray, fn(*(a[index[i:i + size]] for a in arrays)))
             for i in range(0, len(index), size)]
    return jax.tree.map(lambda *pieces: np.concatenate(pieces)[:total], *parts)

  return apply
