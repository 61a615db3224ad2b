"""Tests for soundjax.models: shapes, train mode, input gradients, tracing, registry, pooling."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundjax import losses, models
from soundjax.models.layers import max_pool, pool_window

NUM_CLASSES = 3
# Tiny widths and inputs per model: (hyper-parameters, per-example input shape).
TINY = {
    "vgg": (dict(channels=(4, 8)), (32, 16)),
    "gated_cnn": (dict(channels=(4, 8)), (32, 16)),
    "crnn": (dict(channels=(4, 8), hidden=6), (32, 16)),
    "densenet_se": (dict(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16, num_blocks=2,
                         base_filters=4, stem_features=3, num_heads=2), (4096,)),
    "waveform_cnn": (dict(channels=(4, 8), stem_kernel=16), (4096,)),
    "schlueter_cnn": (dict(features=(4, 4, 8, 8), hidden=(8, 4)), (25, 25)),
    "digits_cnn": (dict(features=(4, 8), hidden=8), (8, 8)),
    "embedding_cnn": (dict(channels=(4, 8), embedding_dim=8), (16, 16)),
}


def _random_variables(model, x):
  """Variables of `model.init`'s shapes filled on the host.

  Eager `model.init` compiles one initializer per parameter shape, which made up most of this
  file's run time; tracing it with `eval_shape` still checks every shape the model builds.
  """
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    if path[-1].key in ("scale", "var"):  # BatchNorm scales and variances stay positive
      return np.ones(leaf.shape, leaf.dtype)
    fan_in = np.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 100
    return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(leaf.dtype)

  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  return jax.tree_util.tree_map_with_path(fill, shapes)


@functools.cache
def _tiny(name):
  """(model, variables, x) for a batch of 2, built once per test session."""
  kwargs, shape = TINY[name]
  model = models.get_model(name, num_classes=NUM_CLASSES, **kwargs)
  x = np.random.default_rng(1).normal(size=(2,) + shape).astype(np.float32)
  return model, _random_variables(model, x), x


@functools.cache
def _apply_both(name):
  """Jitted `fn(variables, x, key) -> (eval logits, (train logits, updates))` for `name`."""
  model = _tiny(name)[0]

  @jax.jit  # one compile: eager, every op compiles on its own
  def fn(variables, x, key):
    out = model.apply(variables, x)
    return out, model.apply(variables, x, train=True, mutable=["batch_stats"],
                            rngs={"dropout": key})

  return fn


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_and_train_mode(name):
  _, variables, x = _tiny(name)
  out, (out_train, updates) = _apply_both(name)(variables, x, jax.random.key(2))
  assert out.shape == out_train.shape == (2, NUM_CLASSES)
  assert np.all(np.isfinite(out)) and np.all(np.isfinite(out_train))
  assert ("batch_stats" in variables) == (name not in ("schlueter_cnn", "digits_cnn"))
  if "batch_stats" in variables:
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                           updates["batch_stats"])
    assert any(jax.tree.leaves(changed))


@pytest.mark.parametrize("name", sorted(TINY))
def test_input_gradient_finite_nonzero_and_traced_once(name):
  model, variables, x = _tiny(name)
  loss_fn = losses.softmax_cross_entropy(losses.model_logits(model))
  traces = []

  def grad_fn(params, x, y):
    traces.append(1)
    return jax.grad(loss_fn, argnums=1)(params, x, y)

  batched = jax.jit(jax.vmap(grad_fn, in_axes=(None, 0, 0)))
  y = jnp.array([0, 2])
  g = batched(variables, x, y)
  batched(variables, x + 1.0, y)
  assert len(traces) == 1
  assert g.shape == x.shape
  assert np.all(np.isfinite(g)) and np.any(g != 0)


@pytest.mark.parametrize("name", ["crnn", "densenet_se", "gated_cnn", "vgg", "waveform_cnn"])
def test_bn_momentum_reaches_every_batch_norm(name):
  # With momentum 0 every running statistic becomes the batch's own after one step, so inference
  # on that batch reproduces the training-mode output only if no BatchNorm kept the default.
  kwargs, _ = TINY[name]
  model = models.get_model(name, num_classes=NUM_CLASSES, bn_momentum=0.0, **kwargs)
  _, variables, x = _tiny(name)

  @jax.jit
  def train_then_infer(variables, x):
    out_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return out_train, model.apply({**variables, **updates}, x)

  out_train, out_eval = train_then_infer(variables, x)
  np.testing.assert_allclose(out_eval, out_train, rtol=1e-4, atol=1e-5)


def test_init_and_dropout_only_in_train_mode():
  model, _, x = _tiny("digits_cnn")
  variables = jax.jit(model.init)(jax.random.key(0), x)
  eval_a, (train_a, _) = _apply_both("digits_cnn")(variables, x, jax.random.key(3))
  eval_b, (train_b, _) = _apply_both("digits_cnn")(variables, x, jax.random.key(4))
  assert not np.allclose(train_a, train_b)
  np.testing.assert_array_equal(eval_a, eval_b)


def test_densenet_returns_log_of_averaged_head_probabilities():
  _, variables, x = _tiny("densenet_se")
  out, _ = _apply_both("densenet_se")(variables, x, jax.random.key(2))
  np.testing.assert_allclose(jax.scipy.special.logsumexp(out, axis=-1), 0.0, atol=1e-5)


def test_published_flatten_sizes():
  """Schlüter's CNN flattens 64x11x7 for 115x80 excerpts; MNIST Net flattens 9216 for 28x28."""
  shapes = jax.eval_shape(models.SchlueterCNN(num_classes=1).init, jax.random.key(0),
                          jnp.zeros((1, 115, 80)))
  assert shapes["params"]["Dense_0"]["kernel"].shape == (64 * 11 * 7, 256)
  assert shapes["params"]["Dense_2"]["kernel"].shape == (64, 1)
  shapes = jax.eval_shape(models.DigitsCNN(num_classes=10).init, jax.random.key(0),
                          jnp.zeros((1, 28, 28)))
  assert shapes["params"]["Dense_0"]["kernel"].shape == (9216, 128)


@pytest.mark.parametrize("name, shape", [("vgg", (128, 64)), ("gated_cnn", (128, 64)),
                                         ("crnn", (128, 64)), ("densenet_se", (64000,)),
                                         ("waveform_cnn", (32000,))])
def test_published_configurations_build(name, shape):
  """Default (published) widths on the published input sizes, traced without compiling."""
  model = models.get_model(name, num_classes=41)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0],
                       jnp.zeros((1,) + shape))
  assert out.shape == (1, 41)


def test_single_logit_model_works_with_sigmoid_loss():
  model = models.SchlueterCNN(num_classes=1)
  x = jnp.zeros((115, 80))
  variables = jax.eval_shape(model.init, jax.random.key(0), x[None])
  loss_fn = losses.sigmoid_binary_cross_entropy(losses.model_logits(model))
  grad = jax.eval_shape(jax.grad(loss_fn, argnums=1), variables, x, jnp.array(1))
  assert grad.shape == x.shape


def test_default_vgg_and_crnn_pool_tiny_inputs_down_to_one():
  """Five 2x2 pools on 8x4 input: pooling stops along an axis once it reaches 1."""
  for model in (models.VGG(num_classes=2, channels=(2,) * 5),
                models.CRNN(num_classes=2, channels=(2,) * 5, hidden=2)):
    out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0],
                         jnp.zeros((1, 8, 4)))
    assert out.shape == (1, 2)


def test_registry():
  assert {models.input_kind(name) for name in models.MODELS} == set(models.INPUT_KINDS)
  assert models.input_kind("densenet_se") == "waveform"
  assert models.input_kind("waveform_cnn") == "waveform"
  assert models.input_kind("vgg") == "logmel"
  assert models.input_kind("digits_cnn") == "image"
  assert isinstance(models.get_model("gated_cnn", num_classes=5), models.GatedCNN)
  with pytest.raises(ValueError, match="known: crnn"):
    models.get_model("resnet", num_classes=2)
  with pytest.raises(ValueError, match="unknown"):
    models.input_kind("resnet")


@pytest.mark.parametrize("name, kwargs, match", [
    ("vgg", dict(num_classes=0), "num_classes"),
    ("vgg", dict(num_classes=2, channels=()), "channels"),
    ("crnn", dict(num_classes=2, hidden=0), "hidden"),
    ("densenet_se", dict(num_classes=2, base_filters=1), "base_filters"),
    ("densenet_se", dict(num_classes=2, n_fft=256, n_mels=200), "n_mels"),
    ("waveform_cnn", dict(num_classes=2, pool=0), "pool"),
    ("vgg", dict(num_classes=2, bn_momentum=1.0), "bn_momentum"),
    ("densenet_se", dict(num_classes=2, bn_momentum=-0.1), "bn_momentum"),
    ("schlueter_cnn", dict(num_classes=1, dropout_rate=1.0), "dropout_rate"),
    ("digits_cnn", dict(num_classes=2, features=(4, 0)), "features"),
])
def test_invalid_hyper_parameters_raise_at_construction(name, kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.get_model(name, **kwargs)


@pytest.mark.parametrize("model, shape", [(models.SchlueterCNN(num_classes=1), (1, 24, 80)),
                                          (models.DigitsCNN(num_classes=2), (1, 5, 8))])
def test_too_small_inputs_raise(model, shape):
  with pytest.raises(ValueError, match="needs every input axis"):
    model.init(jax.random.key(0), jnp.zeros(shape))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 4)), min_size=1, max_size=2),
       st.sampled_from(["VALID", "SAME"]), st.integers(0, 2**31 - 1))
def test_max_pool_equals_flax(axes, padding, seed):
  sizes = tuple(max(s, w) for s, w in axes)  # VALID needs size >= window
  window = tuple(w for _, w in axes)
  x = np.random.default_rng(seed).normal(size=(2,) + sizes + (3,)).astype(np.float32)
  # One jit per example: eager, each op would compile separately for every new shape.
  ours, expected = jax.jit(lambda x: (max_pool(x, window, padding),
                                      nn.max_pool(x, window, strides=window, padding=padding)))(x)
  np.testing.assert_array_equal(ours, expected)


def test_max_pool_gradient_matches_flax_without_ties():
  x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype(np.float32)
  ours = jax.jit(jax.grad(lambda x: jnp.sum(max_pool(x, (2, 3)) ** 2)))(x)
  ref = jax.jit(jax.grad(lambda x: jnp.sum(nn.max_pool(x, (2, 3), strides=(2, 3)) ** 2)))(x)
  np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_max_pool_and_pool_window_validate():
  assert pool_window((5, 1, 2), (2, 2, 2)) == (2, 1, 2)
  with pytest.raises(ValueError, match="padding"):
    max_pool(jnp.zeros((1, 4, 4, 1)), (2, 2), padding="FULL")
  with pytest.raises(ValueError, match="window"):
    max_pool(jnp.zeros((1, 4, 4, 1)), (2,))
  with pytest.raises(ValueError, match="larger"):
    max_pool(jnp.zeros((1, 1, 4, 1)), (2, 2))


def test_max_pool_gradient_goes_to_exactly_one_element_per_window():
  # All-equal windows: `jnp.max` would split the gradient (and could divide by a zero tie count
  # once XLA recomputes the input); the pool gives it whole to the first maximum.
  x = jnp.zeros((1, 4, 6, 2))
  grad = jax.grad(lambda x: jnp.sum(models.max_pool(x, (2, 3))))(x)
  windows = np.asarray(grad).reshape(1, 2, 2, 2, 3, 2)
  np.testing.assert_array_equal(windows.sum(axis=(2, 4)), np.ones((1, 2, 2, 2)))
  assert set(np.unique(windows)) == {0.0, 1.0}
