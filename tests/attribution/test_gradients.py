"""Gradient attributions on closed-form toy models (PAIR-saliency style): known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from soundjax import attribution

SHAPE = (3, 4)  # One tiny "spectrogram".
NUM_CLASSES = 3
BATCHED = dict(in_axes=(None, 0, 0, 0))


def linear_logits(params, x):
  weights, bias = params
  return weights @ jnp.ravel(x) + bias


def mlp_logits(params, x):
  w1, b1, w2, b2 = params
  return w2 @ jnp.tanh(w1 @ jnp.ravel(x) + b1) + b2


def cross_entropy(logits_fn):
  return lambda params, x, y: optax.softmax_cross_entropy_with_integer_labels(
      logits_fn(params, x), y)


def class_score(params, x, y):
  """A "loss" linear in x: the true class's logit of the linear model."""
  return linear_logits(params, x)[y]


def normal(rng, *shape):
  return jnp.asarray(rng.standard_normal(shape), jnp.float32)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)  # Host test data: no PRNG kernels to compile.
  size = int(np.prod(SHAPE))
  return {
      "xs": normal(rng, 4, *SHAPE),
      "ys": jnp.asarray(rng.integers(0, NUM_CLASSES, 4), jnp.int32),
      "keys": jax.random.split(jax.random.key(1), 4),
      "linear": (normal(rng, NUM_CLASSES, size), normal(rng, NUM_CLASSES)),
      "mlp": (normal(rng, 8, size), normal(rng, 8), normal(rng, NUM_CLASSES, 8),
              normal(rng, NUM_CLASSES)),
  }


def batched(fn, params, data):
  return jax.jit(jax.vmap(fn, **BATCHED))(params, data["xs"], data["ys"], data["keys"])


def test_linear_model_gradient_is_weights_times_loss_derivative(data):
  weights, bias = data["linear"]
  logits = jnp.einsum("cd,bd->bc", weights, data["xs"].reshape(4, -1)) + bias[None]
  dloss_dlogits = jax.nn.softmax(logits) - jax.nn.one_hot(data["ys"], NUM_CLASSES)
  expected = (dloss_dlogits @ weights).reshape(data["xs"].shape)
  loss_fn = cross_entropy(linear_logits)
  grad = batched(attribution.gradient(loss_fn), data["linear"], data)
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(batched(attribution.abs_gradient(loss_fn), data["linear"], data),
                             jnp.abs(expected), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(batched(attribution.grad_x_input(loss_fn), data["linear"], data),
                             expected * data["xs"], rtol=1e-5, atol=1e-6)


def test_linear_score_grad_x_input_is_weights_times_input(data):
  rows = data["linear"][0][data["ys"]].reshape(data["xs"].shape)
  a = batched(attribution.grad_x_input(class_score), data["linear"], data)
  np.testing.assert_allclose(a, rows * data["xs"], rtol=1e-6)
  # Integrated gradients of a linear function from a zero baseline is exactly grad x input.
  ig = batched(attribution.integrated_gradients(class_score, num_steps=3), data["linear"], data)
  np.testing.assert_allclose(ig, rows * data["xs"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_midpoint"])
@pytest.mark.parametrize("baseline", [0.0, "array"])
def test_integrated_gradients_completeness(data, method, baseline):
  if baseline == "array":
    baseline = 0.5 * normal(np.random.default_rng(3), *SHAPE)
  loss_fn = cross_entropy(mlp_logits)
  ig = attribution.integrated_gradients(loss_fn, baseline=baseline, num_steps=128, method=method)
  totals = jnp.sum(batched(ig, data["mlp"], data), axis=(1, 2))
  start = jnp.broadcast_to(jnp.asarray(baseline, jnp.float32), SHAPE)
  losses = jax.vmap(loss_fn, in_axes=(None, 0, 0))
  expected = (losses(data["mlp"], data["xs"], data["ys"])
              - losses(data["mlp"], jnp.broadcast_to(start, data["xs"].shape), data["ys"]))
  assert np.all(np.abs(expected) > 1e-2)  # The check below is relative: keep it meaningful.
  np.testing.assert_allclose(totals, expected, rtol=0.01)


def test_integrated_gradients_batch_size_matches_one_vmap(data):
  loss_fn = cross_entropy(mlp_logits)
  full = attribution.integrated_gradients(loss_fn, num_steps=10)
  chunked = attribution.integrated_gradients(loss_fn, num_steps=10, batch_size=4)  # 11 points.
  np.testing.assert_allclose(batched(chunked, data["mlp"], data),
                             batched(full, data["mlp"], data), rtol=1e-5, atol=1e-7)


def test_smoothgrad_of_linear_model_equals_gradient(data):
  smooth = attribution.smoothgrad(attribution.gradient(class_score), stddev=0.5, num_samples=6,
                                  batch_size=4)
  expected = data["linear"][0][data["ys"]].reshape(data["xs"].shape)
  np.testing.assert_allclose(batched(smooth, data["linear"], data), expected, rtol=1e-5)


def test_smoothgrad_passes_its_keys_to_the_wrapped_attribution(data):
  smooth = jax.jit(jax.vmap(attribution.smoothgrad(attribution.random_attribution(), stddev=0.1,
                                                    num_samples=50), **BATCHED))
  a = smooth(data["linear"], data["xs"], data["ys"], data["keys"])
  np.testing.assert_array_equal(a, smooth(data["linear"], data["xs"], data["ys"], data["keys"]))
  # A mean of 50 independent uniforms: near 1/2, and not the same draw in every cell.
  assert abs(float(jnp.mean(a)) - 0.5) < 0.05 and float(jnp.std(a)) > 0.01


def test_random_attribution_is_keyed_uniform(data):
  a = batched(attribution.random_attribution(), data["linear"], data)
  assert a.shape == data["xs"].shape and a.dtype == data["xs"].dtype
  assert float(jnp.min(a)) >= 0.0 and float(jnp.max(a)) < 1.0
  assert not np.allclose(a[0], a[1])  # Different keys, different draws.


@pytest.mark.parametrize("factory, kwargs, bad", [
    (attribution.integrated_gradients, dict(num_steps=0), "num_steps"),
    (attribution.integrated_gradients, dict(method="simpson"), "method"),
    (attribution.integrated_gradients, dict(batch_size=0), "batch_size"),
    (attribution.smoothgrad, dict(stddev=-1.0, num_samples=4), "stddev"),
    (attribution.smoothgrad, dict(stddev=0.1, num_samples=0), "num_samples"),
    (attribution.smoothgrad, dict(stddev=0.1, num_samples=2.5), "num_samples"),
])
def test_invalid_hyper_parameters_raise(factory, kwargs, bad):
  inner = class_score if factory is attribution.integrated_gradients else attribution.gradient(
      class_score)
  with pytest.raises(ValueError, match=bad):
    factory(inner, **kwargs)


@pytest.mark.parametrize("make", [
    lambda loss_fn: attribution.gradient(loss_fn),
    lambda loss_fn: attribution.abs_gradient(loss_fn),
    lambda loss_fn: attribution.grad_x_input(loss_fn),
    lambda loss_fn: attribution.integrated_gradients(loss_fn, num_steps=4, batch_size=2),
    lambda loss_fn: attribution.smoothgrad(attribution.gradient(loss_fn), stddev=0.1,
                                           num_samples=2),
    lambda loss_fn: attribution.random_attribution(),
])
def test_traces_once_per_shape(data, make):
  traces = []
  fn = jax.vmap(make(cross_entropy(linear_logits)), **BATCHED)

  @jax.jit
  def counted(*args):
    traces.append(None)
    return fn(*args)

  counted(data["linear"], data["xs"], data["ys"], data["keys"])
  counted(data["linear"], data["xs"] + 1.0, data["ys"], jax.random.split(jax.random.key(9), 4))
  assert len(traces) == 1
