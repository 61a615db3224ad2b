"""One process of `tests/test_distributed.py`: a sharded PGD and a short training run.

Usage: `python -m tests.distributed_worker OUT COORDINATOR NUM_PROCESSES PROCESS_ID DATA_DIR
SETTINGS_JSON`. With NUM_PROCESSES 1 (COORDINATOR "-") it is the single-process reference. Writes
`OUT/process_<id>.npz` (the results) and `OUT/process_<id>.json` (the files this process opened
for writing in the training workdir `OUT/train`, outside orbax's checkpoints, seen by an audit
hook).
"""

import json
import os
import sys

import jax
import numpy as np

from soundjax import attacks, losses, models, parallel, training
from tests.training.test_loop import tiny_config


def _record_writes(workdir: str, written: set) -> None:
  """Adds to `written` every file under `workdir` this process opens for writing, from now on.

  Python-level opens only (tensorboardX and metrics.jsonl use `open`); orbax's checkpoints are
  left out: orbax coordinates those across processes itself.
  """
  checkpoints = os.path.join(workdir, "checkpoints")

  def audit(event, args):
    if event != "open" or not isinstance(args[0], str) or not args[0].startswith(workdir):
      return
    mode, flags = args[1] or "", args[2] or 0
    writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    if writing and not args[0].startswith(checkpoints):
      written.add(os.path.relpath(args[0], workdir))

  sys.addaudithook(audit)


def _pgd(num_processes: int):
  """PGD on a tiny VGG, batched with vmap, the batch split over every process's devices: through
  `chunked` (every process passes the whole batch) and `shard_batch` (each passes its rows)."""
  model = models.VGG(num_classes=3, channels=(4, 8))
  x = np.random.default_rng(0).standard_normal((8, 16, 8)).astype(np.float32)
  y = np.arange(8, dtype=np.int32) % 3
  keys = jax.random.split(jax.random.key(1), 8)
  variables = model.init(jax.random.key(0), x[:1])
  loss_fn = losses.softmax_cross_entropy(losses.model_logits(model))
  batched = jax.jit(jax.vmap(attacks.pgd(loss_fn, eps=0.5, step_size=0.2, num_steps=3),
                             in_axes=(None, 0, 0, 0)))
  mesh = parallel.batch_mesh()
  chunked = parallel.chunked(batched, 8, variables)(x, y, keys)
  rows = slice(None)
  if num_processes > 1:
    rows = slice(4 * jax.process_index(), 4 * jax.process_index() + 4)
  batch = parallel.shard_batch((x[rows], y[rows], keys[rows]), mesh)
  assert batch[0].shape == x.shape and len(batch[0].sharding.device_set) == 2, batch[0].sharding
  sharded = parallel.to_host(batched(parallel.replicate(variables, mesh), *batch))
  return {"x": x, "chunked": chunked, "sharded": sharded}


def main(out, address, num_processes, process_id, data_dir, settings):
  num_processes, process_id = int(num_processes), int(process_id)
  if num_processes > 1:
    parallel.initialize(address, num_processes=num_processes, process_id=process_id)
  jax.config.update("jax_threefry_partitionable", False)
  assert jax.process_count() == num_processes and jax.device_count() == 2, jax.devices()
  assert jax.config.jax_cpu_collectives_implementation == "gloo"
  results = _pgd(num_processes)

  workdir, written = os.path.join(out, "train"), set()
  _record_writes(workdir, written)
  config = tiny_config(data_dir, json.loads(settings), num_steps=4, log_every=2, eval_every=2,
                       checkpoint_every=2)
  result = training.train(config, workdir)
  params = parallel.to_host(jax.tree.leaves(result.state.variables))
  results.update({f"param_{i}": leaf for i, leaf in enumerate(params)},
                 logits=result.evaluation["logits"], labels=result.evaluation["labels"])
  np.savez(os.path.join(out, f"process_{process_id}.npz"), **results)
  with open(os.path.join(out, f"process_{process_id}.json"), "w") as file:
    json.dump(sorted(written), file)
  print("ok", flush=True)


if __name__ == "__main__":
  main(*sys.argv[1:])
