"""Closed-form toy models shared by the tests: a linear classifier and a one-hidden-layer MLP with
plain jnp parameters, example batches, and jitted batched helpers that count their traces."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from soundjax.losses import softmax_cross_entropy

# The repository root (tests run commands from it).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A synthetic set small enough to build in about a second: 8 kHz, quarter-second clips (built
# once per session by the `tiny_data_dir` fixture of conftest.py).
TINY_SYNTH = dict(sample_rate=8000, clip_seconds=0.25, num_train=48, num_test=24, seed=0)

# Tiny polyphonic soundscapes (the `tiny_soundscapes_dir` fixture), with a front end of 50
# frames/s and frame targets to match: 1 s clips, 51 frames.
TINY_SOUNDSCAPES = dict(sample_rate=8000, clip_seconds=1.0, num_train=8, num_validate=4,
                        num_test=4, seed=0)
TINY_SED_FRONTEND = dict(sample_rate=8000, n_fft=256, hop_length=160, n_mels=16)
TINY_FRAME_TARGETS = dict(num_frames=51, frame_rate=50.0)

DIM, CLASSES, HIDDEN, BATCH = 6, 3, 8, 4


def linear_logits(params, x):
  return x @ params["w"] + params["b"]


def mlp_logits(params, x):
  return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def linear_params(seed=0, scale=1.0):
  w = scale * jax.random.normal(jax.random.PRNGKey(seed), (DIM, CLASSES))
  return {"w": w, "b": jnp.zeros(CLASSES)}


def mlp_params(seed=0):
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
  return {"w1": jax.random.normal(k1, (DIM, HIDDEN)), "b1": jnp.zeros(HIDDEN),
          "w2": jax.random.normal(k2, (HIDDEN, CLASSES)),
          "b2": 0.1 * jax.random.normal(k3, (CLASSES,))}


def batch(seed, scale=0.5, size=BATCH):
  """Inputs uniform in [-scale, scale], labels and per-example keys."""
  kx, ky, kk = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.uniform(kx, (size, DIM), minval=-scale, maxval=scale)
  return x, jax.random.randint(ky, (size,), 0, CLASSES), jax.random.split(kk, size)


class batched:  # pylint: disable=invalid-name
  """`jax.jit(jax.vmap(attack))` that counts how often the attack is traced."""

  def __init__(self, attack):
    self.traces = 0

    def counted(params, x, y, key):
      self.traces += 1
      return attack(params, x, y, key)

    self._fn = jax.jit(jax.vmap(counted, in_axes=(None, 0, 0, 0)))

  def __call__(self, params, x, y, keys):
    return self._fn(params, x, y, keys)


@functools.partial(jax.jit, static_argnums=0)
def batch_loss(loss_fn, params, x, y):
  return jax.vmap(loss_fn, in_axes=(None, 0, 0))(params, x, y)


@functools.partial(jax.jit, static_argnums=0)
def sizes(metric, x, x_adv):
  """A `soundjax.metrics.perturbation` function per example."""
  return jax.vmap(metric)(x, x_adv)


@functools.partial(jax.jit, static_argnums=0)
def predict(logits_fn, params, x):
  return jnp.argmax(jax.vmap(logits_fn, (None, 0))(params, x), axis=-1)


LINEAR_LOSS = softmax_cross_entropy(linear_logits)
MLP_LOSS = softmax_cross_entropy(mlp_logits)


def assert_budget_sweep_compiles_once(make, params, x, y, keys, levels, *, rtol=1e-6, atol=1e-7):
  """`make(budget)` (an attack factory) jitted with the budget traced: one compile for every
  level of `levels`, each equal to the attack built with that level, and levels that differ
  giving different examples."""
  sweep = jax.jit(lambda budget, x, y, keys: jax.vmap(make(budget), in_axes=(None, 0, 0, 0))(
      params, x, y, keys))
  outputs = []
  for level in levels:
    traced = sweep(jnp.float32(level), x, y, keys)
    concrete = jax.jit(jax.vmap(make(level), in_axes=(None, 0, 0, 0)))(params, x, y, keys)
    np.testing.assert_allclose(traced, concrete, rtol=rtol, atol=atol)
    outputs.append(np.asarray(traced))
  assert not np.allclose(outputs[0], outputs[1])
  assert sweep._cache_size() == 1
