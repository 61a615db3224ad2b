"""Data parallelism over a batch mesh: results equal one device's, example for example."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from configs import common
from soundjax import checks, parallel, training
from tests.toys import REPO

# Runs in a fresh interpreter: the device count is fixed when JAX starts.
EIGHT_DEVICE_SCRIPT = textwrap.dedent("""
    import jax
    import numpy as np
    jax.config.update("jax_threefry_partitionable", False)
    from soundjax import attacks, attribution, losses, models, parallel

    assert jax.device_count() == 8, jax.devices()
    model = models.VGG(num_classes=3, channels=(4, 8))
    x = np.random.default_rng(0).standard_normal((11, 16, 8)).astype(np.float32)
    y = np.arange(11, dtype=np.int32) % 3
    keys = jax.random.split(jax.random.key(1), 11)
    variables = model.init(jax.random.key(0), x[:1])
    loss_fn = losses.softmax_cross_entropy(losses.model_logits(model))
    transforms = {
        "pgd": attacks.pgd(loss_fn, eps=0.5, step_size=0.2, num_steps=3),
        "integrated_gradients": attribution.integrated_gradients(loss_fn, num_steps=4),
    }
    one = parallel.batch_mesh(jax.devices()[:1])
    eight = parallel.batch_mesh()
    for name, transform in transforms.items():
      batched = jax.jit(jax.vmap(transform, in_axes=(None, 0, 0, 0)))
      results = []
      for mesh in (one, eight):
        apply = parallel.chunked(batched, 5, variables, mesh=mesh)
        results.append(apply(x, y, keys))
      # A chunk of 5 rounds up to 8, one example per device: shard_batch would raise otherwise.
      np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6, err_msg=name)
      print(name, "max difference", np.abs(results[1] - results[0]).max())
      sharded = batched(parallel.replicate(variables, eight),
                        *parallel.shard_batch((x[:8], y[:8], keys[:8]), eight))
      assert len(sharded.sharding.device_set) == 8, (name, sharded.sharding)
    print("ok")
""")


# Training on 8 devices (a batch of 8: one example each, BatchNorm statistics over all 8) and on
# one; argv: data_dir, the synth_events settings as JSON, a scratch folder.
EIGHT_DEVICE_TRAINING_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import jax
    import numpy as np
    jax.config.update("jax_threefry_partitionable", False)
    from configs import common
    from soundjax import checks, training

    data_dir, settings, scratch = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    results = {}
    for devices in (1, 8):
      config = common.base_config()
      config.data = common.data_config("synth_events", **settings)
      config.data.data_dir = data_dir
      config.frontend = common.frontend_config(sample_rate=8000, n_fft=256, hop_length=128,
                                               n_mels=16)
      config.model.kwargs = {"channels": (4, 8)}
      config.train = common.train_config(batch_size=8, num_steps=4, eval_every=2,
                                         eval_batch_size=16, num_devices=devices)
      results[devices] = training.train(config, os.path.join(scratch, str(devices)))
    one, eight = (jax.tree.leaves(results[n].state.variables) for n in (1, 8))
    assert len(results[8].state.params["Dense_0"]["kernel"].sharding.device_set) == 8
    for a, b in zip(one, eight):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(results[8].evaluation["logits"], results[1].evaluation["logits"],
                               rtol=1e-4, atol=1e-4)
    try:
      training.loop.training_mesh(common.train_config(batch_size=12))
      raise AssertionError("8 devices accepted a batch of 12")
    except checks.ConfigError as error:
      assert "train.batch_size" in str(error), error
    print("ok")
""")


def _run_on_eight_devices(script, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  result = subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")


def test_eight_devices_give_one_device_results():
  _run_on_eight_devices(EIGHT_DEVICE_SCRIPT)


def test_training_on_eight_devices_equals_one(tiny_data_dir, tiny_synth_settings, tmp_path):
  _run_on_eight_devices(EIGHT_DEVICE_TRAINING_SCRIPT, tiny_data_dir,
                        json.dumps(tiny_synth_settings), str(tmp_path))


def test_training_rejects_more_devices_than_the_machine_has():
  settings = common.train_config(batch_size=8, num_devices=len(jax.local_devices()) + 1)
  with pytest.raises(checks.ConfigError, match="train.num_devices"):
    training.loop.training_mesh(settings)


def test_shard_batch_rejects_a_batch_the_devices_cannot_split():
  mesh = parallel.batch_mesh(jax.devices()[:1])
  assert parallel.shard_batch(np.zeros((3, 2)), mesh).shape == (3, 2)
  with pytest.raises(ValueError, match="cannot be split evenly"):
    parallel.shard_batch(np.float32(1.0), mesh)


def test_chunked_pads_the_last_chunk_traces_once_and_keeps_pytrees():
  traces = []

  def double(x, y):
    traces.append(x.shape)
    return {"sum": 2 * x + y[:, None], "y": y}

  fn = parallel.chunked(jax.jit(double), batch_size=2)
  x, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
  out = fn(x, y)
  np.testing.assert_array_equal(out["sum"], 2 * x + y[:, None])
  np.testing.assert_array_equal(out["y"], y)
  assert traces == [(2, 2)]


def test_chunked_takes_one_call_when_the_batch_is_small():
  np.testing.assert_array_equal(parallel.chunked(lambda x: x + 1, 8)(np.zeros(3)), np.ones(3))


def test_chunked_passes_shared_arguments_whole_to_every_chunk():
  out = parallel.chunked(lambda w, x: w["scale"] * x, 2, {"scale": np.float32(3)})(np.arange(5.0))
  np.testing.assert_array_equal(out, 3 * np.arange(5.0))


def test_chunked_rejects_a_bad_batch_size():
  with pytest.raises(ValueError, match="batch_size"):
    parallel.chunked(lambda x: x, 0)


def test_chunked_dispatches_the_next_chunk_before_copying_the_last_to_the_host():
  events = []

  class Result:  # A leaf whose host copy is logged (np.asarray calls __array__).
    def __init__(self, index):
      self.index = index

    def __array__(self, dtype=None, copy=None):
      events.append(("copy", self.index))
      return np.full(2, self.index, dtype or np.float32)

  def fn(x):
    events.append(("call", len([e for e in events if e[0] == "call"])))
    return {"out": Result(events[-1][1])}

  out = parallel.chunked(fn, 2, mesh=parallel.batch_mesh(jax.devices()[:1]))(np.zeros(6))
  assert events == [("call", 0), ("call", 1), ("copy", 0), ("call", 2), ("copy", 1), ("copy", 2)]
  np.testing.assert_array_equal(out["out"], [0, 0, 1, 1, 2, 2])


def _record_initialize(monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, "initialize",
                      lambda *args, **kwargs: calls.append((args, kwargs)))
  return calls


def test_initialize_stays_one_process_when_nothing_asks_for_more(monkeypatch):
  calls = _record_initialize(monkeypatch)
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  assert parallel.initialize() is False and not calls


def test_initialize_takes_the_environment_and_arguments_over_it(monkeypatch):
  calls = _record_initialize(monkeypatch)
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
  monkeypatch.setenv("JAX_PROCESS_ID", "3")
  assert parallel.initialize() is True
  assert parallel.initialize(process_id=0) is True
  assert calls == [(("10.0.0.1:1234",), {"num_processes": 4, "process_id": 3}),
                   (("10.0.0.1:1234",), {"num_processes": 4, "process_id": 0})]
  monkeypatch.setenv("JAX_PROCESS_ID", "first")
  with pytest.raises(ValueError, match="JAX_PROCESS_ID must be an integer"):
    parallel.initialize()


def test_to_host_gives_numpy_arrays_of_every_leaf():
  tree = parallel.to_host({"a": parallel.shard_batch(np.arange(4.0), parallel.batch_mesh(
      jax.devices()[:1])), "b": [np.int32(3)]})
  assert isinstance(tree["a"], np.ndarray) and isinstance(tree["b"][0], np.ndarray)
  np.testing.assert_array_equal(tree["a"], np.arange(4.0))
