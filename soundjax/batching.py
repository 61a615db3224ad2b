"""Running a batched, jitted function over many examples in fixed-size chunks."""

from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.sharding import Mesh

from soundjax import sharding


def chunked(fn: Callable[..., Any], batch_size: int, *shared: Any,
            mesh: Optional[Mesh] = None) -> Callable[..., Any]:
  """Applies batched `fn` to its arguments' leading axis in chunks of at most `batch_size`.

  Each chunk is split over the devices of `mesh` (see `soundjax.sharding`), so its size is
  rounded up to a multiple of the device count, and the `shared` arguments (model variables)
  are copied to every device once. The last chunk is filled up with repeats of the first
  examples, so that a jitted `fn` compiles once per chunk size; the extra outputs are dropped.

  Args:
    fn: `fn(*shared, *arrays) -> outputs`, a pytree of arrays whose leading axis is the batch.
    batch_size: examples per call, >= 1.
    *shared: leading arguments of `fn` that every chunk takes whole.
    mesh: the devices to split each chunk over (default: every local device).

  Returns:
    `apply(*arrays) -> outputs` for all examples, as numpy arrays.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}.")

  devices = mesh or sharding.batch_mesh()
  replicated = sharding.replicate(shared, devices)

  def apply(*arrays):
    total = len(arrays[0])
    size = sharding.round_up(min(batch_size, total), devices)
    index = np.arange(-(-total // size) * size) % total
    parts = [jax.tree.map(np.asarray, fn(*replicated, *sharding.shard_batch(
        tuple(a[index[i:i + size]] for a in arrays), devices)))
             for i in range(0, len(index), size)]
    return jax.tree.map(lambda *pieces: np.concatenate(pieces)[:total], *parts)

  return apply
