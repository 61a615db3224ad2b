"""Two CPU processes on JAX's multi-controller runtime (gloo collectives) give one process's
results.

`tests/distributed_worker.py` runs a sharded PGD and a short training run, once as a pair of
processes joined by `jax.distributed.initialize` on 127.0.0.1, once as a single process with the
same two devices; here the pair is checked against the single process, and the data pipeline's
per-process shards against whole batches.
"""

import json
import os
import socket
import subprocess
import sys
import time

import grain
import numpy as np
import pytest

from soundjax import data, training
from tests.toys import REPO, TINY_SYNTH

# Wall-clock bound of the three worker processes together (about 50 s on a loaded 2-core machine).
TIMEOUT_SECONDS = 240


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _start(out, address, num_processes, process_id, data_dir, settings, devices=1):
  os.makedirs(out, exist_ok=True)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  args = [sys.executable, "-m", "tests.distributed_worker", out, address, str(num_processes),
          str(process_id), data_dir, json.dumps(settings)]
  log = open(os.path.join(out, f"log_{process_id}.txt"), "w")  # pylint: disable=consider-using-with
  return subprocess.Popen(args, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT), log


@pytest.fixture(scope="module")
def runs(tiny_data_dir, tmp_path_factory):
  """The folders of the two-process run and of the one-process reference, once they finished."""
  root = tmp_path_factory.mktemp("distributed")
  pair, single = str(root / "pair"), str(root / "single")
  address = f"127.0.0.1:{_free_port()}"
  started = [_start(pair, address, 2, i, tiny_data_dir, TINY_SYNTH) for i in range(2)]
  started.append(_start(single, "-", 1, 0, tiny_data_dir, TINY_SYNTH, devices=2))
  deadline = time.monotonic() + TIMEOUT_SECONDS
  try:
    for process, _ in started:
      process.wait(timeout=max(1.0, deadline - time.monotonic()))
  finally:  # A process left waiting for a dead peer would hang; end every one, finished or not.
    for process, log in started:
      process.kill()
      process.wait()
      log.close()
  for process, log in started:
    with open(log.name) as file:
      assert process.returncode == 0, file.read()[-3000:]
  return pair, single


def _results(out, process_id):
  with np.load(os.path.join(out, f"process_{process_id}.npz")) as results:
    return dict(results)


def test_sharded_pgd_equals_one_process_bit_for_bit(runs):
  pair, single = runs
  reference = _results(single, 0)
  for process_id in range(2):
    results = _results(pair, process_id)
    for name in ("chunked", "sharded"):
      np.testing.assert_array_equal(results[name], reference[name], err_msg=name)
  np.testing.assert_array_equal(reference["sharded"], reference["chunked"])
  # A real attack: the examples moved, within the Linf ball of eps = 0.5.
  change = np.abs(reference["sharded"] - reference["x"]).max()
  assert 0.1 < change <= 0.5 + 1e-6, change


def test_training_equals_one_process(runs, tiny_data_dir, tiny_synth_settings):
  pair, single = runs
  reference = _results(single, 0)
  params = sorted(name for name in reference if name.startswith("param_"))
  assert len(params) > 4
  for process_id in range(2):
    results = _results(pair, process_id)
    for name in params + ["logits"]:
      np.testing.assert_allclose(results[name], reference[name], rtol=1e-5, atol=1e-6,
                                 err_msg=name)
    # Every process has the whole test set, in order, from its own shard and the other's.
    builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
    np.testing.assert_array_equal(results["labels"], data.arrays(builder, "test")["y"])
  rows, expected = (training.read_metrics(os.path.join(out, "train")) for out in (pair, single))
  assert [(r["step"], r["split"]) for r in rows] == [(r["step"], r["split"]) for r in expected]
  for row, want in zip(rows, expected):
    figures = sorted(set(want) - {"step", "split"})
    assert sorted(set(row) - {"step", "split"}) == figures
    np.testing.assert_allclose([row[k] for k in figures], [want[k] for k in figures], rtol=1e-5)
  assert (sorted(os.listdir(os.path.join(pair, "train", "checkpoints")))
          == sorted(os.listdir(os.path.join(single, "train", "checkpoints"))) == ["2", "4"])


def test_only_process_zero_writes_files(runs):
  pair, _ = runs
  written = []
  for process_id in range(2):
    with open(os.path.join(pair, f"process_{process_id}.json")) as file:
      written.append(json.load(file))
  assert "metrics.jsonl" in written[0]
  assert any(name.startswith("tensorboard/events.out.tfevents") for name in written[0])
  assert not written[1], written[1]
  assert len(os.listdir(os.path.join(pair, "train", "tensorboard"))) == 1


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_shards_of_every_batch_make_the_whole_batch(tiny_data_dir, tiny_synth_settings,
                                                    drop_remainder):
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  whole = data.batches(builder, "test", batch_size=10, drop_remainder=drop_remainder)
  shards = [data.batches(builder, "test", batch_size=10, drop_remainder=drop_remainder,
                         shard=grain.sharding.ShardOptions(index, 2)) for index in range(2)]
  # 24 records: batches of 10, 10 and (kept) 4; the last is shard 0's 4 rows and 1 padding row,
  # and 5 of shard 1's padding.
  assert len(whole) == len(shards[0]) == len(shards[1]) == (2 if drop_remainder else 3)
  for i, batch in enumerate(whole):
    parts = [shard[i] for shard in shards]
    assert all(len(part["y"]) == 5 for part in parts)
    mask = np.concatenate([part["mask"] for part in parts])
    assert mask.sum() == len(batch["y"]) and mask[:len(batch["y"])].all()
    for key in ("x", "y"):
      np.testing.assert_array_equal(np.concatenate([p[key] for p in parts])[mask], batch[key])


def test_shards_of_a_shuffled_stream_make_its_batches(tiny_data_dir, tiny_synth_settings):
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  reading = dict(batch_size=8, seed=3, shuffle=True, num_epochs=None, drop_remainder=True)
  whole = data.batches(builder, "train", **reading)
  shards = [data.batches(builder, "train", shard=grain.sharding.ShardOptions(i, 4), **reading)
            for i in range(4)]
  for step in (0, 5, 11):  # 48 records: step 5 is in the first epoch, step 11 in the second.
    np.testing.assert_array_equal(np.concatenate([s[step]["y"] for s in shards]),
                                  whole[step]["y"])
    assert all(s[step]["mask"].all() for s in shards)


def test_one_shard_is_the_whole_dataset_and_a_batch_must_split(tiny_data_dir, tiny_synth_settings):
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  one = data.batches(builder, "test", batch_size=10, shard=grain.sharding.ShardOptions(0, 1))
  assert "mask" not in one[0] and len(one[2]["y"]) == 4
  with pytest.raises(ValueError, match="batch_size 10 cannot be split over 3 shards"):
    data.batches(builder, "test", batch_size=10, shard=grain.sharding.ShardOptions(0, 3))
