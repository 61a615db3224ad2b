"""Tests for soundjax.models.crnn_sed: shapes, time alignment, train mode, tracing, validation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from soundjax import losses, models
from soundjax.models.crnn_sed import CRNNSED, FrequencyConvs

FRAMES, MELS, NUM_CLASSES = 24, 20, 3
TINY = dict(num_classes=NUM_CLASSES, channels=(4, 4, 4), pools=(5, 2, 2), hidden=8)
# Three SAME convs of 5 frames: each GRU-input frame sees input frames within +-6.
REACH = 3 * (5 // 2)
VARIANTS = {
    "baseline": dict(),
    "bidirectional": dict(bidirectional=True),
    "attention": dict(attention=dict(widths=(5,), units=8)),
    "multi_head": dict(attention=dict(widths=(3, 7, None), units=8, history_only=True)),
}


def _x(batch=2, seed=0):
  return np.random.default_rng(seed).normal(size=(batch, FRAMES, MELS)).astype(np.float32)


@functools.cache
def _tiny(name):
  """(model, variables) with running statistics away from their init, built once."""
  model = CRNNSED(**TINY, **VARIANTS[name])
  variables = jax.jit(model.init)(jax.random.key(0), _x())
  stats = jax.tree.map(lambda s: s + 0.5, variables["batch_stats"])
  return model, {**variables, "batch_stats": stats}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_frame_wise_logits_in_both_modes(name):
  model, variables = _tiny(name)

  @jax.jit
  def both(variables, x, key):
    out_train, updates = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                     rngs={"dropout": key})
    return model.apply(variables, x), out_train, updates

  out, out_train, updates = both(variables, _x(), jax.random.key(1))
  assert out.shape == out_train.shape == (2, FRAMES, NUM_CLASSES)
  assert np.all(np.isfinite(out)) and np.all(np.isfinite(out_train))
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"],
                         updates["batch_stats"])
  assert all(jax.tree.leaves(changed))


@pytest.mark.parametrize("rate, differs", [(0.3, True), (0.0, False)])
def test_dropout_only_in_train_mode(rate, differs):
  model = CRNNSED(**TINY, dropout_rate=rate)
  _, variables = _tiny("baseline")

  @jax.jit
  def run(x, key):
    train = model.apply(variables, x, train=True, mutable=["batch_stats"],
                        rngs={"dropout": key})[0]
    return model.apply(variables, x), train

  eval_a, train_a = run(_x(), jax.random.key(2))
  eval_b, train_b = run(_x(), jax.random.key(3))
  np.testing.assert_array_equal(eval_a, eval_b)
  assert (not np.allclose(train_a, train_b)) == differs


def _moved(batch_fn, x):
  """`moved[t, s]`: whether output frame s changes when input frame t of `x[frames, mels]` is
  perturbed (compared within one batch size: another compiled batch size can round differently).
  """
  frames = np.arange(FRAMES)
  same = np.repeat(x[None], FRAMES, axis=0)
  perturbed = same.copy()
  perturbed[frames, frames] += 5.0 * np.random.default_rng(4).normal(size=(FRAMES, MELS))
  change = np.abs(np.asarray(batch_fn(perturbed)) - np.asarray(batch_fn(same)))
  return change.max(axis=-1) > 1e-5  # a perturbed frame moves features by O(1)


def _gru_input(model, variables, x):
  """The conv front's output, i.e. exactly what the GRU reads, `[batch, frames, features]`."""
  _, state = model.apply(variables, x, mutable=["intermediates"],
                         capture_intermediates=lambda m, _: isinstance(m, FrequencyConvs))
  return state["intermediates"]["convs"]["__call__"][0]


def test_gru_input_frame_t_depends_on_input_frames_near_t_only():
  model, variables = _tiny("baseline")
  x = _x(batch=1)[0]
  # Gradient: d GRU-input[s] / d x[t] is nonzero exactly for |s - t| <= REACH.
  jacobian = jax.jit(jax.jacrev(lambda x: _gru_input(model, variables, x[None])[0]))(x)
  support = np.abs(np.asarray(jacobian)).sum(axis=(1, 3)) > 0  # [s, t]
  frames = np.arange(FRAMES)
  np.testing.assert_array_equal(support, np.abs(frames[:, None] - frames[None, :]) <= REACH)
  # Perturbation: moving input frame t moves GRU-input frames within t +- REACH only.
  moved = _moved(jax.jit(functools.partial(_gru_input, model, variables)), x)
  assert not np.any(moved & (np.abs(frames[:, None] - frames[None, :]) > REACH))
  assert np.all(moved[frames, frames])


@pytest.mark.parametrize("name", ["baseline", "multi_head"])
def test_forward_gru_and_causal_attention_never_look_past_the_conv_reach(name):
  # A forward GRU and history-only heads carry frame t forward only: outputs before
  # t - REACH cannot move. The public code's time scramble breaks this.
  model, variables = _tiny(name)
  frames = np.arange(FRAMES)
  moved = _moved(jax.jit(functools.partial(model.apply, variables)), _x(batch=1)[0])
  assert not np.any(moved & (frames[None, :] < frames[:, None] - REACH))
  assert np.all(moved[frames, frames])


def test_input_gradients_batch_with_vmap_and_trace_once_per_shape():
  model, variables = _tiny("attention")
  logits_fn = losses.model_logits(model)
  traces = []

  def grad_fn(params, x, y):
    traces.append(x.shape)
    loss = lambda x: optax.sigmoid_binary_cross_entropy(logits_fn(params, x), y).mean()
    return jax.grad(loss)(x)

  batched = jax.jit(jax.vmap(grad_fn, in_axes=(None, 0, 0)))
  y = np.zeros((2, FRAMES, NUM_CLASSES), np.float32)
  g = batched(variables, _x(), y)
  batched(variables, _x(seed=1), y)
  assert len(traces) == 1
  assert g.shape == (2, FRAMES, MELS) and np.all(np.isfinite(g)) and np.any(g != 0)
  batched(variables, _x()[:, :16], y[:, :16])  # a new number of frames: one more trace
  assert len(traces) == 2


def test_published_configuration_builds():
  """40 mels pooled 5, 4, 2 down to 1: the GRU reads 64 features per frame of 500."""
  model = models.get_model("crnn_sed", num_classes=10, attention={"widths": (50,)})
  out, variables = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x),
                                  jnp.zeros((1, 500, 40)))
  assert out.shape == (1, 500, 10)
  params = variables["params"]
  assert params["convs"]["Conv_0"]["kernel"].shape == (5, 5, 1, 64)
  assert params["convs"]["Conv_2"]["kernel"].shape == (5, 5, 64, 64)
  assert params["gru"]["iz"]["kernel"].shape == (64, 64)
  assert params["attention"]["score"]["query"]["kernel"].shape == (64, 64)
  assert models.input_kind("crnn_sed") == "logmel"
  assert isinstance(model, CRNNSED) and model.dropout_rate == 0.3 and not model.bidirectional


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=2, pools=(5, 4)), "one entry per conv block"),
    (dict(num_classes=2, pools=(5, 0, 2)), "pools"),
    (dict(num_classes=2, channels=()), "channels"),
    (dict(num_classes=2, kernel_size=0), "kernel_size"),
    (dict(num_classes=2, dropout_rate=1.0), "dropout_rate"),
    (dict(num_classes=2, hidden=0), "hidden"),
    (dict(num_classes=2, bn_momentum=1.0), "bn_momentum"),
    (dict(num_classes=2, attention=dict(width=5)), "attention must be"),
    (dict(num_classes=2, attention=dict(widths=(0,))), "width"),
    (dict(num_classes=2, attention=dict(score="cosine")), "score"),
])
def test_invalid_hyper_parameters_raise_at_construction(kwargs, match):
  with pytest.raises(ValueError, match=match):
    CRNNSED(**kwargs)


@pytest.mark.parametrize("shape, match", [((1, 24, 20), "divisible by 40"),
                                          ((24, 40), r"\[batch, frames, n_mels\]")])
def test_inputs_the_pools_do_not_fit_raise(shape, match):
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(CRNNSED(num_classes=2).init, jax.random.key(0), jnp.zeros(shape))
