"""Data parallelism: the batch axis split over devices, everything else replicated, and chunked
batching of many examples; on one host or on many (JAX's multi-controller runtime).

Attacks and attributions are per-example functions batched with `vmap`, so splitting the batch
over a 1-D device mesh needs no code change inside them: `jax.jit` compiles the batched
function for the input shardings it is given and each device runs its slice of the batch.
Results equal a single device's, example for example.

Several processes (hosts) run the same program after `initialize()`: the mesh spans every
process's devices, each process passes `shard_batch` its own rows of a batch (from
`data.batches(..., shard=...)`) and gets back one global array, and `to_host` gives every
process the whole of a result.

Example:
  >>> mesh = parallel.batch_mesh()
  >>> batched = jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))
  >>> x_adv = batched(parallel.replicate(variables, mesh), *parallel.shard_batch((x, y, keys),
  ...                 mesh))
"""

import os
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"
# What `initialize` reads when an argument is not given (JAX itself reads the first).
COORDINATOR_ADDRESS_ENV, NUM_PROCESSES_ENV, PROCESS_ID_ENV = (
    "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> bool:
  """Joins this process to a multi-process JAX run, when arguments or the environment ask for it.

  Calls `jax.distributed.initialize` (before any JAX computation) with the given values, or
  those of the environment variables `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and
  `JAX_PROCESS_ID`; with none of them set, it does nothing and the run stays one process. On CPU,
  collectives across processes use gloo (JAX's default).

  Args:
    coordinator_address: `host:port` of process 0's coordinator service, e.g. "10.0.0.1:1234".
    num_processes: how many processes take part.
    process_id: this process's index, in `[0, num_processes)`.

  Returns:
    Whether this process is (now) one of several.

  Example:
    >>> parallel.initialize("127.0.0.1:1234", num_processes=2, process_id=0)  # then process 1
  """
  if jax.distributed.is_initialized():
    return True
  address = coordinator_address or os.environ.get(COORDINATOR_ADDRESS_ENV)
  count = num_processes if num_processes is not None else _env_int(NUM_PROCESSES_ENV)
  index = process_id if process_id is not None else _env_int(PROCESS_ID_ENV)
  if address is None and count is None and index is None:
    return False
  jax.distributed.initialize(address, num_processes=count, process_id=index)
  return True


def _env_int(name: str) -> Optional[int]:
  value = os.environ.get(name)
  if value is None:
    return None
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"Environment variable {name} must be an integer, got {value!r}.") from None


def batch_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D mesh named `"batch"` over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  if not devices:
    raise ValueError("batch_mesh needs at least one device.")
  return Mesh(np.asarray(devices), (BATCH_AXIS,))


def round_up(count: int, mesh: Mesh) -> int:
  """The smallest multiple of `mesh`'s device count that is at least `count`."""
  return -(-count // mesh.size) * mesh.size


def replicate(tree: Any, mesh: Optional[Mesh] = None) -> Any:
  """`tree` (e.g. model variables, the same on every process) copied to every device of `mesh`."""
  mesh = mesh or batch_mesh()
  return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(tree: Any, mesh: Optional[Mesh] = None) -> Any:
  """`tree`'s arrays split along their leading (batch) axis over `mesh`.

  On one process `tree` is the whole batch. With several, it is this process's rows, and the
  result is the global batch: every process's rows, in process order (`jax.process_index()`).

  Raises:
    ValueError: if a leading axis is not a multiple of the number of (this process's) devices.
  """
  mesh = mesh or batch_mesh()
  devices = len(mesh.local_devices)
  for leaf in jax.tree.leaves(tree):
    if np.ndim(leaf) == 0 or np.shape(leaf)[0] % devices:
      raise ValueError(f"A batch of shape {np.shape(leaf)} cannot be split evenly over "
                       f"{devices} devices; use a batch size that is a multiple of it.")
  sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree.map(lambda leaf: jax.make_array_from_process_local_data(sharding, leaf), tree)


def _shard_whole(tree: Any, mesh: Mesh) -> Any:
  """`shard_batch` for a batch every process holds whole: each device takes its own rows."""
  if jax.process_count() == 1:
    return shard_batch(tree, mesh)
  sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
  return jax.tree.map(
      lambda leaf: jax.make_array_from_process_local_data(sharding, leaf, np.shape(leaf)), tree)


def to_host(tree: Any) -> Any:
  """`tree`'s arrays as numpy arrays, each whole on every process (gathered across processes)."""
  def fetch(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return multihost_utils.process_allgather(leaf, tiled=True)
    return np.asarray(leaf)

  return jax.tree.map(fetch, tree)


def chunked(fn: Callable[..., Any], batch_size: int, *shared: Any,
            mesh: Optional[Mesh] = None) -> Callable[..., Any]:
  """Applies batched `fn` to its arguments' leading axis in chunks of at most `batch_size`.

  Each chunk is split over the devices of `mesh` (`shard_batch`), so its size is
  rounded up to a multiple of the device count, and the `shared` arguments (model variables)
  are copied to every device once. The last chunk is filled up with repeats of the first
  examples, so that a jitted `fn` compiles once per chunk size; the extra outputs are dropped.
  With several processes, every process passes the same arrays, its devices compute their rows
  of each chunk, and every process gets all outputs.

  Args:
    fn: `fn(*shared, *arrays) -> outputs`, a pytree of arrays whose leading axis is the batch.
    batch_size: examples per call, >= 1.
    *shared: leading arguments of `fn` that every chunk takes whole.
    mesh: the devices to split each chunk over (default: every device).

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
      running = fn(*replicated, *_shard_whole(chunk, devices))
      if pending is not None:
        parts.append(to_host(pending))
      pending = running
    parts.append(to_host(pending))
    return jax.tree.map(lambda *pieces: np.concatenate(pieces)[:total], *parts)

  return apply
