"""Data parallelism: the batch axis split over devices, everything else replicated, and chunked
batching of many examples.

Attacks and attributions are per-example functions batched with `vmap`, so splitting the batch
over a 1-D device mesh needs no code change inside them: `jax.jit` compiles the batched
function for the input shardings it is given and each device runs its slice of the batch.
Results equal a single device's, example for example.

Example:
  >>> mesh = parallel.batch_mesh()
  >>> batched = jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))
  >>> x_adv = batched(parallel.replicate(variables, mesh), *parallel.shard_batch((x, y, keys),
  ...                 mesh))
"""

from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D mesh named `"batch"` over `devices` (default: every local device)."""
  devices = jax.local_devices() if devices is None else list(devices)
  if not devices:
    raise ValueError("batch_mesh needs at least one device.")
  return Mesh(np.asarray(devices), (BATCH_AXIS,))


def round_up(count: int, mesh: Mesh) -> int:
  """The smallest multiple of `mesh`'s device count that is at least `count`."""
  return -(-count // mesh.size) * mesh.size


def replicate(tree: Any, mesh: Optional[Mesh] = None) -> Any:
  """`tree` (e.g. model variables) copied to every device of `mesh`."""
  mesh = mesh or batch_mesh()
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(tree: Any, mesh: Optional[Mesh] = None) -> Any:
  """`tree`'s arrays split along their leading (batch) axis over `mesh`.

  Raises:
    ValueError: if a leading axis is not a multiple of the number of devices.
  """
  mesh = mesh or batch_mesh()
  for leaf in jax.tree.leaves(tree):
    if np.ndim(leaf) == 0 or np.shape(leaf)[0] % mesh.size:
      raise ValueError(f"A batch of shape {np.shape(leaf)} cannot be split evenly over "
                       f"{mesh.size} devices; use a batch size that is a multiple of it.")
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(BATCH_AXIS)))


def chunked(fn: Callable[..., Any], batch_size: int, *shared: Any,
            mesh: Optional[Mesh] = None) -> Callable[..., Any]:
  """Applies batched `fn` to its arguments' leading axis in chunks of at most `batch_size`.

  Each chunk is split over the devices of `mesh` (`shard_batch`), so its size is
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

  devices = mesh or batch_mesh()
  replicated = replicate(shared, devices)

  def apply(*arrays):
    total = len(arrays[0])
    size = round_up(min(batch_size, total), devices)
    index = np.arange(-(-total // size) * size) % total
    parts, pending = [], None
    for start in range(0, len(index), size):
      chunk = tuple(a[index[start:start + size]] for a in arrays)
      # JAX dispatches asynchronously: chunk k + 1 is queued before chunk k is copied to the host,
      # so the device never waits for the host's numpy conversion.
      running = fn(*replicated, *shard_batch(chunk, devices))
      if pending is not None:
        parts.append(jax.tree.map(np.asarray, pending))
      pending = running
    parts.append(jax.tree.map(np.asarray, pending))
    return jax.tree.map(lambda *pieces: np.concatenate(pieces)[:total], *parts)

  return apply
