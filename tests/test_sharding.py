"""Data parallelism over a batch mesh: results equal one device's, example for example."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from soundjax import sharding

# Runs in a fresh interpreter: the device count is fixed when JAX starts.
EIGHT_DEVICE_SCRIPT = textwrap.dedent("""
    import jax
    import numpy as np
    jax.config.update("jax_threefry_partitionable", False)
    from soundjax import attacks, attribution, batching, losses, models, sharding

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
    one = sharding.batch_mesh(jax.devices()[:1])
    eight = sharding.batch_mesh()
    for name, transform in transforms.items():
      batched = jax.jit(jax.vmap(transform, in_axes=(None, 0, 0, 0)))
      results = []
      for mesh in (one, eight):
        apply = batching.chunked(
            lambda *a: batched(sharding.replicate(variables, mesh), *a), 5, mesh)
        results.append(apply(x, y, keys))
      # A chunk of 5 rounds up to 8, one example per device: shard_batch would raise otherwise.
      np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6, err_msg=name)
      print(name, "max difference", np.abs(results[1] - results[0]).max())
      sharded = batched(sharding.replicate(variables, eight),
                        *sharding.shard_batch((x[:8], y[:8], keys[:8]), eight))
      assert len(sharded.sharding.device_set) == 8, (name, sharded.sharding)
    print("ok")
""")


def test_eight_devices_give_one_device_results():
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  result = subprocess.run([sys.executable, "-c", EIGHT_DEVICE_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")


def test_shard_batch_rejects_a_batch_the_devices_cannot_split():
  mesh = sharding.batch_mesh(jax.devices()[:1])
  assert sharding.shard_batch(np.zeros((3, 2)), mesh).shape == (3, 2)
  with pytest.raises(ValueError, match="cannot be split evenly"):
    sharding.shard_batch(np.float32(1.0), mesh)
