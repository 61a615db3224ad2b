"""Tests for soundjax.models.embedding_cnn: heads, embedding, parameter count, modes, tracing."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import models
from soundjax.models.embedding_cnn import EmbeddingCNN, embedding_fn

FRAMES, MELS, DIM = 16, 8, 6
TINY = dict(embedding_dim=DIM, channels=(3, 5))  # two pools: 16x8 -> 4x2
HEADS = {"one": 4, "two": (3, 5)}


def _x(batch=3, seed=0):
  return np.random.default_rng(seed).normal(size=(batch, FRAMES, MELS)).astype(np.float32)


@functools.cache
def _tiny(heads):
  """(model, variables) with running statistics moved away from their init (mean 0, var 1)."""
  model = EmbeddingCNN(num_classes=HEADS[heads], **TINY)
  variables = jax.jit(model.init)(jax.random.key(0), _x())
  rng = np.random.default_rng(1)
  stats = jax.tree_util.tree_map_with_path(
      lambda path, s: (rng.uniform(0.5, 2.0, s.shape) if path[-1].key == "var"
                       else rng.normal(size=s.shape)).astype(np.float32),
      variables["batch_stats"])
  return model, {**variables, "batch_stats": stats}


def _reference_forward(variables, x, channels):
  """Conv -> BN (running statistics, Keras epsilon) -> ReLU, 2x2 pools, flatten, linear
  embedding, written from the published layer list with lax and numpy, not the model's code."""
  variables = jax.tree.map(np.asarray, variables)  # numpy throughout: no jax broadcasting rules
  params, stats = variables["params"]["trunk"], variables["batch_stats"]["trunk"]
  h = np.asarray(x)[..., None]
  for unit in range(2 * len(channels)):
    conv = params[f"Conv_{unit}"]
    h = np.asarray(jax.lax.conv_general_dilated(
        h, conv["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    h = h + conv["bias"]
    norm, stat = params[f"BatchNorm_{unit}"], stats[f"BatchNorm_{unit}"]
    h = (h - stat["mean"]) / np.sqrt(stat["var"] + 1e-3) * norm["scale"] + norm["bias"]
    h = np.maximum(h, 0.0)
    if unit % 2 == 1:
      b, f, m, c = h.shape
      h = h.reshape(b, f // 2, 2, m // 2, 2, c).max(axis=(2, 4))
  h = h.reshape(h.shape[0], -1)
  return h @ params["embedding"]["kernel"] + params["embedding"]["bias"]


def _embed(model, variables, x, train=False):
  """Embeddings of a batch; with `train`, `(embeddings, updated statistics)`."""
  mutable = ["batch_stats"] if train else False
  return model.apply(variables, x, train, method=EmbeddingCNN.embed, mutable=mutable)


@pytest.mark.parametrize("heads", sorted(HEADS))
def test_output_shapes_mirror_num_classes(heads):
  model, variables = _tiny(heads)
  out = jax.jit(model.apply)(variables, _x())
  if heads == "one":
    assert isinstance(out, jax.Array) and out.shape == (3, 4)
  else:
    assert isinstance(out, tuple) and [o.shape for o in out] == [(3, 3), (3, 5)]
  assert _embed(model, variables, _x()).shape == (3, DIM)


@pytest.mark.parametrize("heads", sorted(HEADS))
def test_embedding_and_logits_equal_an_independent_forward(heads):
  model, variables = _tiny(heads)
  x = _x()
  z, out = jax.jit(lambda v, x: (_embed(model, v, x), model.apply(v, x)))(variables, x)
  z_ref = _reference_forward(variables, x, TINY["channels"])
  np.testing.assert_allclose(z, z_ref, rtol=1e-4, atol=1e-4)
  assert np.any(z_ref < 0)  # linear: a ReLU on the embedding would show here
  # Every head is one affine map of the embedding, with its own parameters.
  outs = (out,) if heads == "one" else out
  for i, logits in enumerate(outs):
    head = variables["params"][f"heads_{i}"]
    head = jax.tree.map(np.asarray, head)
    np.testing.assert_allclose(logits, np.asarray(z) @ head["kernel"] + head["bias"],
                               rtol=1e-5, atol=1e-5)


def _hand_count(frames, mels, channels, dim, heads):
  """(trainable parameters, BatchNorm statistics) of the architecture, by formula."""
  convs, c_in = 0, 1
  for c in channels:  # two 3x3 convs with biases per block
    convs += (9 * c_in * c + c) + (9 * c * c + c)
    c_in = c
  norms = 2 * 2 * sum(channels)  # scale and offset of each conv unit's BatchNorm
  pooled = (frames // 2 ** len(channels)) * (mels // 2 ** len(channels)) * channels[-1]
  embedding = pooled * dim + dim
  return convs + norms + embedding + sum(dim * k + k for k in heads), norms


@pytest.mark.parametrize("num_classes, heads, expected", [
    (4, (4,), 98684),  # instrument level: 73464 conv + 480 BN + 24608 embedding + 132 head
    ((13, 16), (13, 16), 99509),  # phoneme level: onset and nucleus heads, 429 + 528
])
def test_published_parameter_count(num_classes, heads, expected):
  model = models.get_model("embedding_cnn", num_classes=num_classes, embedding_dim=32)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 48, 64)))
  count = lambda tree: sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))
  trainable, statistics = _hand_count(48, 64, (8, 16, 32, 64), 32, heads)
  assert count(shapes["params"]) == trainable == expected
  assert count(shapes["batch_stats"]) == statistics == 480
  assert shapes["params"]["trunk"]["embedding"]["kernel"].shape == (3 * 4 * 64, 32)  # 48x64 -> 3x4


def test_lvt_embedding_width():
  model = EmbeddingCNN(num_classes=3, embedding_dim=16)
  z = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x,
                                                      method=EmbeddingCNN.embed)[0],
                     jnp.zeros((2, 48, 64)))
  assert z.shape == (2, 16)


def test_train_mode_updates_statistics_and_mixes_the_batch():
  model, variables = _tiny("two")
  x = _x()
  x_other = x.copy()
  x_other[1:] += 3.0  # the other examples change, example 0 does not

  @jax.jit
  def run(variables, x):
    train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return _embed(model, variables, x), _embed(model, variables, x, True), train, updates

  z_eval, (z_train, _), out_train, updates = run(variables, x)
  z_eval_other, (z_train_other, _), _, _ = run(variables, x_other)
  assert [o.shape for o in out_train] == [(3, 3), (3, 5)]  # no dropout: no rng needed
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                         updates["batch_stats"])
  assert all(jax.tree.leaves(changed))
  # Inference uses running statistics (example 0 is independent of the rest of the batch);
  # training normalises with the batch's own.
  np.testing.assert_allclose(z_eval[0], z_eval_other[0], rtol=1e-5, atol=1e-6)
  assert not np.allclose(z_train[0], z_train_other[0], atol=1e-3)


def test_bn_momentum_reaches_every_batch_norm():
  # With momentum 0 the running statistics become the batch's own after one step, so inference
  # reproduces the training output only if every BatchNorm got the momentum.
  model = EmbeddingCNN(num_classes=4, bn_momentum=0.0, **TINY)
  _, variables = _tiny("one")

  @jax.jit
  def train_then_infer(variables, x):
    out_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    return out_train, model.apply({**variables, **updates}, x)

  out_train, out_eval = train_then_infer(variables, _x())
  np.testing.assert_allclose(out_eval, out_train, rtol=1e-4, atol=1e-4)


def test_embedding_fn_vmaps_and_differentiates_w_r_t_the_input():
  model, variables = _tiny("two")
  fn = embedding_fn(model)
  x = _x()
  z = jax.jit(jax.vmap(fn, in_axes=(None, 0)))(variables, x)
  np.testing.assert_allclose(z, _embed(model, variables, x), rtol=1e-5, atol=1e-5)
  grads = jax.jit(jax.vmap(jax.grad(lambda v, x: fn(v, x)[0], argnums=1),
                           in_axes=(None, 0)))(variables, x)
  assert grads.shape == x.shape
  assert np.all(np.isfinite(grads)) and np.all(np.any(grads != 0, axis=(1, 2)))
  with pytest.raises(TypeError, match="EmbeddingCNN"):
    embedding_fn(models.VGG(num_classes=2))


def test_embedding_fn_traces_once_per_shape():
  model, variables = _tiny("one")
  fn = embedding_fn(model)
  traces = []

  def traced(variables, x):
    traces.append(x.shape)
    return fn(variables, x)

  batched = jax.jit(jax.vmap(traced, in_axes=(None, 0)))
  batched(variables, _x())
  batched(variables, _x(seed=1))
  assert len(traces) == 1
  batched(variables, _x(batch=5))  # another batch size (the frames and mels are fixed at init)
  assert len(traces) == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=()), "num_classes"),
    (dict(num_classes=(13, 0)), "num_classes"),
    (dict(num_classes=2.0), "num_classes"),
    (dict(num_classes=True), "num_classes"),
    (dict(num_classes="4"), "num_classes"),
    (dict(num_classes=4, embedding_dim=0), "embedding_dim"),
    (dict(num_classes=4, channels=()), "channels"),
    (dict(num_classes=4, channels=(8, 0)), "channels"),
    (dict(num_classes=4, bn_momentum=1.0), "bn_momentum"),
])
def test_invalid_hyper_parameters_raise_at_construction(kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.get_model("embedding_cnn", **kwargs)


@pytest.mark.parametrize("shape, match", [((2, 15, 8), "multiples of 4"),
                                          ((2, 16, 2), "multiples of 4"),
                                          ((16, 8), r"\[batch, frames, n_mels\]")])
def test_inputs_the_pools_cannot_divide_raise(shape, match):
  model = EmbeddingCNN(num_classes=4, **TINY)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))


def test_registry():
  assert models.input_kind("embedding_cnn") == "logmel"
  assert not models.frame_wise("embedding_cnn")
  assert isinstance(models.get_model("embedding_cnn", num_classes=(5, 7)), EmbeddingCNN)
