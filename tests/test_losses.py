"""Losses against closed forms, their label checks, and `model_logits` with and without `train`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import losses
from tests.toys import CLASSES, DIM, linear_logits, linear_params


def log_softmax(logits):
  """numpy reference, independent of optax."""
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_softmax_cross_entropy_is_minus_the_log_probability():
  logits = np.array([[1.0, 2.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
  y = np.array([2, 0])
  np.testing.assert_allclose(losses.softmax_cross_entropy_on_logits(logits, y),
                             -log_softmax(logits)[np.arange(2), y], rtol=1e-6)


def test_sigmoid_cross_entropy_closed_form_and_bool_labels():
  logits = np.array([[2.0], [-1.0], [0.3]], np.float32)
  y = np.array([1, 0, 1])
  p = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
  expected = -(y * np.log(p) + (1 - y) * np.log(1 - p))
  np.testing.assert_allclose(losses.sigmoid_cross_entropy_on_logits(logits, y), expected,
                             rtol=1e-6)
  np.testing.assert_allclose(losses.sigmoid_cross_entropy_on_logits(logits, y.astype(bool)),
                             expected, rtol=1e-6)


@pytest.mark.parametrize("name, logits, bad", [
    ("softmax_cross_entropy", np.zeros((4, CLASSES)), (CLASSES, -1, 100)),
    ("sigmoid_binary_cross_entropy", np.zeros((4, 1)), (2, -1)),
])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_out_of_range_labels_are_nan_in_every_loss(name, logits, bad, smoothing):
  loss = losses.smoothed_loss_on_logits(name, smoothing)
  for label in bad:
    values = np.asarray(loss(jnp.asarray(logits, jnp.float32), jnp.array([0, label, 1, 0])))
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2, 3]]).all(), (label, values)


def test_per_example_loss_and_its_input_gradient_are_nan_for_a_bad_label():
  params = linear_params()
  loss_fn = losses.softmax_cross_entropy(linear_logits)
  x = jnp.linspace(-1.0, 1.0, DIM)
  np.testing.assert_allclose(loss_fn(params, x, 1),
                             -log_softmax(linear_logits(params, x))[1], rtol=1e-5)
  for label in (CLASSES, -1):
    assert np.isnan(loss_fn(params, x, label))
    assert np.isnan(jax.grad(loss_fn, argnums=1)(params, x, label)).all()
  assert np.isfinite(jax.grad(loss_fn, argnums=1)(params, x, CLASSES - 1)).all()


@pytest.mark.parametrize("y, error, match", [
    (1.0, TypeError, r"y must hold integer class indices, got dtype float32"),
    (jnp.eye(CLASSES)[1], TypeError, r"not one-hot vectors"),
    (jnp.array([1]), ValueError, r"one integer class index per example \(shape \(\)\)"),
])
def test_per_example_loss_refuses_labels_it_cannot_use(y, error, match):
  loss_fn = losses.sigmoid_binary_cross_entropy(lambda params, x: x[:1])
  with pytest.raises(error, match=match):
    loss_fn(None, jnp.zeros(DIM), y)


def test_batch_loss_refuses_labels_of_another_shape():
  with pytest.raises(ValueError, match=r"^soundjax\.losses\.sigmoid_binary_cross_entropy: y must "
                     r"be integer class indices of shape \(3,\).*got shape \(3, 1\) \(drop the "
                     r"trailing axis"):
    losses.sigmoid_cross_entropy_on_logits(jnp.zeros((3, 1)), jnp.zeros((3, 1), jnp.int32))
  with pytest.raises(ValueError, match=r"shape \(3,\).*got shape \(2,\)"):
    losses.softmax_cross_entropy_on_logits(jnp.zeros((3, CLASSES)), jnp.zeros(2, jnp.int32))


class NoTrain(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(CLASSES)(x)


class KeywordOnlyTrain(nn.Module):
  @nn.compact
  def __call__(self, x, *, train: bool):
    return nn.Dropout(0.9, deterministic=not train)(nn.Dense(CLASSES)(x))


@pytest.mark.parametrize("module", [NoTrain, KeywordOnlyTrain])
def test_model_logits_passes_train_only_to_models_that_take_it(module):
  x = jnp.linspace(-1.0, 1.0, DIM)
  variables = {"params": NoTrain().init(jax.random.key(0), x[None])["params"]}
  logits = losses.model_logits(module())(variables, x)  # Dropout needs no rng when not training
  np.testing.assert_allclose(logits, x @ variables["params"]["Dense_0"]["kernel"]
                             + variables["params"]["Dense_0"]["bias"], rtol=1e-5)


def test_multilabel_cross_entropy_closed_form_per_frame_and_per_example():
  logits = jax.random.normal(jax.random.key(0), (2, 5, 3)) * 3.0  # [batch, frames, classes]
  targets = (jax.random.uniform(jax.random.key(1), (2, 5, 3)) > 0.5).astype(jnp.float32)
  p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
  y = np.asarray(targets, np.float64)
  expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(-1)  # Keras: mean over classes
  loss, predict = losses.loss_on_logits("multilabel_sigmoid_cross_entropy")
  np.testing.assert_allclose(loss(logits, targets), expected, rtol=1e-5)
  np.testing.assert_array_equal(predict(logits), np.asarray(logits) > 0)
  per_example = losses.per_example_loss(lambda params, x: x, "multilabel_sigmoid_cross_entropy")
  np.testing.assert_allclose(jax.vmap(per_example, in_axes=(None, 0, 0))(None, logits, targets),
                             expected.mean(-1), rtol=1e-5)
  smoothed = losses.smoothed_loss_on_logits("multilabel_sigmoid_cross_entropy", 0.2)
  soft = y * 0.8 + 0.1
  np.testing.assert_allclose(smoothed(logits, targets),
                             -(soft * np.log(p) + (1 - soft) * np.log(1 - p)).mean(-1), rtol=1e-5)


def test_multilabel_cross_entropy_refuses_targets_of_another_shape():
  loss, _ = losses.loss_on_logits("multilabel_sigmoid_cross_entropy")
  with pytest.raises(ValueError, match="logits' shape"):
    loss(jnp.zeros((2, 5, 3)), jnp.zeros((2, 5)))


def test_heads_loss_is_the_weighted_sum_of_each_heads_cross_entropy():
  rng = np.random.default_rng(0)
  onset, nucleus = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
  y = np.array([[0, 3], [2, 1], [1, 0], [2, 2], [0, 1]])
  loss, predict = losses.heads_loss_on_logits("softmax_cross_entropy", (0.6, 0.4))
  rows = np.arange(5)
  expected = (-0.6 * log_softmax(onset)[rows, y[:, 0]] - 0.4 * log_softmax(nucleus)[rows, y[:, 1]])
  np.testing.assert_allclose(loss((onset, nucleus), y), expected, rtol=1e-5)
  np.testing.assert_array_equal(predict((onset, nucleus)),
                                np.stack([onset.argmax(-1), nucleus.argmax(-1)], axis=-1))
  # Smoothed: each head against its own smoothed one-hot targets, weighted the same.
  smoothed, _ = losses.heads_loss_on_logits("softmax_cross_entropy", (0.6, 0.4), 0.1)
  def smoothed_ce(logits, labels):
    k = logits.shape[-1]
    targets = np.full(logits.shape, 0.1 / k)
    targets[rows, labels] += 0.9
    return -(targets * log_softmax(logits)).sum(-1)
  expected = 0.6 * smoothed_ce(onset, y[:, 0]) + 0.4 * smoothed_ce(nucleus, y[:, 1])
  np.testing.assert_allclose(smoothed((onset, nucleus), y), expected, rtol=1e-5)


def test_per_example_heads_loss_of_a_two_head_model_matches_the_batch_loss():
  class TwoHeads(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
      return nn.Dense(3)(x), nn.Dense(2)(x)

  model = TwoHeads()
  variables = model.init(jax.random.key(0), jnp.zeros((1, 4)))
  x = jax.random.normal(jax.random.key(1), (6, 4))
  y = jnp.array([[0, 1], [2, 0], [1, 1], [0, 0], [2, 1], [1, 0]])
  loss_fn = losses.per_example_heads_loss(losses.model_logits(model), "softmax_cross_entropy",
                                          (0.6, 0.4))
  per_example = jax.vmap(loss_fn, in_axes=(None, 0, 0))(variables, x, y)
  onset, nucleus = model.apply(variables, x)
  rows = np.arange(6)
  expected = (-0.6 * log_softmax(onset)[rows, y[:, 0]] - 0.4 * log_softmax(nucleus)[rows, y[:, 1]])
  np.testing.assert_allclose(per_example, expected, rtol=1e-5)


@pytest.mark.parametrize("logits, y, match", [
    ((np.zeros((2, 3)),), np.zeros((2, 2), int), "tuple of 2 arrays"),
    ((np.zeros((2, 3)), np.zeros((2, 4))), np.zeros((2,), int), r"one class index per head, "
     r"shape \(2, 2\)"),
])
def test_heads_loss_refuses_logits_or_labels_that_do_not_fit(logits, y, match):
  loss, _ = losses.heads_loss_on_logits("softmax_cross_entropy", (0.6, 0.4))
  with pytest.raises(ValueError, match=match):
    loss(logits, y)
  with pytest.raises(ValueError, match="weights"):
    losses.heads_loss_on_logits("softmax_cross_entropy", (0.6, -1.0))
