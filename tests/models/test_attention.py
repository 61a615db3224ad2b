"""Tests for soundjax.models.attention: the window masks, a numpy reference, multi-head mixing."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax.models.attention import (
  MultiHeadSelfAttention,
  SeqSelfAttention,
  band,
  band_offset,
  window_mask,
)
from tests.finite_differences import central_differences

FRAMES, FEATURES, UNITS = 16, 4, 8
# (layer, per-head widths, history_only) for the masking tests: centred, causal, multi-head.
LAYERS = {
    "centred": (SeqSelfAttention(width=5, units=UNITS), (5,), False),
    "history": (SeqSelfAttention(width=4, history_only=True, units=UNITS), (4,), True),
    "dot": (SeqSelfAttention(width=6, score="dot"), (6,), False),
    "multi": (MultiHeadSelfAttention(widths=(3, 6, None), units=UNITS), (3, 6, None), False),
    "multi_history": (MultiHeadSelfAttention(widths=(2, 5, None), history_only=True, units=UNITS,
                                             share_scores=False), (2, 5, None), True),
}


def _band(frames, width, history_only):
  """The published window, in loops: `[i - w//2, i - w//2 + w)` or `[i - w + 1, i]`."""
  mask = np.zeros((frames, frames), bool)
  for i in range(frames):
    for j in range(frames):
      if width is None:
        mask[i, j] = j <= i or not history_only
      else:
        lower = i - (width - 1) if history_only else i - width // 2
        mask[i, j] = lower <= j < lower + width
  return mask


def _randomised(params, seed):
  """float64 copies of `params` drawn at random, biases included (they start at zero)."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda p: 0.5 * rng.normal(size=p.shape), params)


def _x(batch=1, seed=0):
  return np.random.default_rng(seed).normal(size=(batch, FRAMES, FEATURES)).astype(np.float32)


@functools.cache
def _setup(name):
  """(layer, variables, jitted `f(x) -> per-head outputs [batch, K, T, D]`, masks [K, T, T])."""
  layer, widths, history_only = LAYERS[name]
  variables = jax.jit(layer.init)(jax.random.key(1), _x())

  @jax.jit
  def heads(x):
    out, state = layer.apply(variables, x, mutable=["intermediates"])
    sown = state["intermediates"]
    return sown["heads"][0] if "heads" in sown else out[:, None]

  masks = np.stack([_band(FRAMES, w, history_only) for w in widths])
  return layer, variables, heads, masks


def test_window_mask_matches_published_band():
  centred = np.asarray(window_mask(6, 4))
  np.testing.assert_array_equal(centred[3], [0, 1, 1, 1, 1, 0])  # [3 - 2, 3 + 2)
  np.testing.assert_array_equal(centred[0], [1, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(window_mask(6, 3, True))[3], [0, 1, 1, 1, 0, 0])
  for width in (1, 2, 3, 5, 8, 30, None):
    for history_only in (False, True):
      np.testing.assert_array_equal(window_mask(9, width, history_only),
                                    _band(9, width, history_only))


@pytest.mark.parametrize("history_only", [False, True])
def test_every_narrower_band_is_a_slice_of_the_widest(history_only):
  """The frames of band(w) are those of band(W) at [offset, offset + w), each frame's row: what
  lets heads sharing one score function score the widest band once."""
  for widest in range(1, 12):
    wide_j, wide_inside = band(9, widest, history_only)
    for width in range(1, widest + 1):
      j, inside = band(9, width, history_only)
      start = band_offset(width, widest, history_only)
      np.testing.assert_array_equal(wide_j[:, start:start + width], j)
      np.testing.assert_array_equal(wide_inside[:, start:start + width], inside)
      # And the frames each row sees are window_mask's, the published band.
      rows = np.asarray(window_mask(9, width, history_only))
      for i in range(9):
        assert set(j[i][inside[i]]) == set(np.flatnonzero(rows[i]))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_frames_outside_each_heads_window_do_not_change_its_output(name):
  _, _, heads, masks = _setup(name)
  x = _x()
  base = np.asarray(heads(x))[0]
  noise = 5.0 * np.random.default_rng(2).normal(size=(FRAMES, FRAMES, FEATURES))
  for k, mask in enumerate(masks):
    # Copy i of the batch is x with frame i's visible frames (or the others) replaced.
    outside = np.where(mask[:, :, None], x, x + noise).astype(np.float32)
    inside = np.where(mask[:, :, None], x + noise, x).astype(np.float32)
    diagonal = np.arange(FRAMES)
    kept = np.asarray(heads(outside))[diagonal, k, diagonal]
    moved = np.asarray(heads(inside))[diagonal, k, diagonal]
    np.testing.assert_allclose(kept, base[k], atol=1e-6)
    assert np.all(np.abs(moved - base[k]).max(axis=-1) > 1e-4)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_input_gradient_support_is_each_heads_window(name):
  layer, variables, heads, masks = _setup(name)
  x = _x()[0]
  per_head = jax.jit(jax.jacrev(lambda x: heads(x[None])[0]))(x)  # [K, T, D, T, D]
  support = np.abs(np.asarray(per_head)).sum(axis=(2, 4)) > 0
  np.testing.assert_array_equal(support, masks)
  combined = jax.jit(jax.jacrev(lambda x: layer.apply(variables, x[None])[0]))(x)
  np.testing.assert_array_equal(np.abs(np.asarray(combined)).sum(axis=(1, 3)) > 0,
                                masks.any(axis=0))
  if LAYERS[name][2]:  # history_only never looks ahead
    assert not np.any(np.triu(support, k=1))


def _published_reference(x, params, width, history_only, score="additive"):
  """keras-self-attention's `SeqSelfAttention.call` in numpy loops, for one example."""
  frames = x.shape[0]
  e = np.zeros((frames, frames))
  for i in range(frames):
    for j in range(frames):
      if score == "additive":
        hidden = np.tanh(x[i] @ params["query"]["kernel"] + x[j] @ params["key"]["kernel"]
                         + params["query"]["bias"])
        e[i, j] = hidden @ params["energy"]["kernel"][:, 0] + params["energy"]["bias"][0]
      else:
        e[i, j] = x[i] @ params["w_a"] @ x[j] + params["b_a"]
  e = 1.0 / (1.0 + np.exp(-e))
  e = np.exp(e - e.max(axis=-1, keepdims=True)) * _band(frames, width, history_only)
  return (e / (e.sum(axis=-1, keepdims=True) + 1e-7)) @ x


@pytest.mark.parametrize("width, history_only, score", [(5, False, "additive"),
                                                        (4, True, "additive"),
                                                        (None, False, "additive"),
                                                        (6, False, "dot")])
def test_single_head_matches_numpy_reference_of_the_published_layer(width, history_only, score):
  layer = SeqSelfAttention(width=width, history_only=history_only, score=score, units=UNITS)
  x = _x(batch=2)
  params = _randomised(jax.eval_shape(layer.init, jax.random.key(3), x)["params"]["score"], 3)
  out = jax.jit(layer.apply)({"params": {"score": params}}, x)
  for b in range(2):
    np.testing.assert_allclose(out[b], _published_reference(x[b].astype(np.float64), params,
                                                            width, history_only, score),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width, history_only, score", [(5, False, "additive"),
                                                        (4, True, "additive"),
                                                        (6, False, "dot"),
                                                        (None, True, "additive")])
def test_scanned_gradients_match_finite_differences_of_the_numpy_reference(width, history_only,
                                                                          score):
  """Scores are scanned one band offset (or, over every frame, one key frame) at a time and
  recomputed backwards: their gradient for the input and every parameter against central
  differences of the published layer."""
  layer = SeqSelfAttention(width=width, history_only=history_only, score=score, units=UNITS)
  x = _x()[0].astype(np.float64)
  params = jax.tree.map(np.array, _randomised(  # 0-d arrays, not floats: perturbed in place
      jax.eval_shape(layer.init, jax.random.key(5), x[None])["params"]["score"], 5))
  cotangent = np.random.default_rng(6).normal(size=x.shape)

  def loss(params, x):
    return jnp.sum(layer.apply({"params": {"score": params}}, x[None])[0] * cotangent)

  grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  leaves, _ = jax.tree.flatten(params)
  expected = central_differences(
      lambda: np.sum(_published_reference(x, params, width, history_only, score) * cotangent),
      leaves + [x], eps=1e-6)
  for got, want in zip(jax.tree.leaves(grads[0]) + [grads[1]], expected):
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_multi_head_mix_matches_numpy_reference_per_example_and_frame():
  widths = (2, 5, None)
  layer = MultiHeadSelfAttention(widths=widths, units=UNITS)
  x = _x(batch=2)
  params = _randomised(jax.eval_shape(layer.init, jax.random.key(4), x)["params"], 4)
  out = jax.jit(layer.apply)({"params": params}, x)
  for b in range(2):
    xb = x[b].astype(np.float64)
    contexts = np.stack([_published_reference(xb, params["score"], w, False) for w in widths])
    logits = contexts @ params["head_score"]["kernel"][:, 0] + params["head_bias"]  # [K, T]
    beta = np.exp(logits) / np.exp(logits).sum(axis=0)
    assert np.ptp(beta, axis=1).min() > 1e-3  # the mix really varies from frame to frame
    np.testing.assert_allclose(out[b], np.einsum("kt,ktd->td", beta, contexts), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("width, history_only", [(3, False), (4, True), (None, False)])
@pytest.mark.parametrize("share_scores", [True, False])
def test_heads_of_one_width_equal_the_single_head(width, history_only, share_scores):
  single = SeqSelfAttention(width=width, history_only=history_only, units=UNITS)
  multi = MultiHeadSelfAttention(widths=(width,) * 3, history_only=history_only, units=UNITS,
                                 share_scores=share_scores)
  x = _x(batch=2)
  variables = jax.jit(single.init)(jax.random.key(5), x)
  params = dict(jax.jit(multi.init)(jax.random.key(6), x)["params"])  # random head mix
  params["head_bias"] = jnp.array([[1.0], [-0.5], [0.2]])
  for name in ("score",) if share_scores else ("score_0", "score_1", "score_2"):
    params[name] = variables["params"]["score"]
  expected = jax.jit(single.apply)(variables, x)
  np.testing.assert_allclose(jax.jit(multi.apply)({"params": params}, x), expected,
                             rtol=1e-5, atol=1e-6)
  one = MultiHeadSelfAttention(widths=(width,), history_only=history_only, units=UNITS,
                               share_scores=share_scores)
  np.testing.assert_array_equal(jax.jit(one.apply)(variables, x), expected)  # same tree


@pytest.mark.parametrize("history_only", [False, True])
def test_width_covering_the_clip_equals_unmasked_attention(history_only):
  x = _x(batch=2)
  full = SeqSelfAttention(width=None, history_only=history_only, units=UNITS)
  variables = jax.jit(full.init)(jax.random.key(7), x)
  expected = jax.jit(full.apply)(variables, x)
  # A centred window needs 2 * frames to reach both ends from every frame; a causal one, frames.
  covering = 2 * FRAMES if not history_only else FRAMES
  for width, equal in ((covering, True), (FRAMES // 2, False)):
    layer = SeqSelfAttention(width=width, history_only=history_only, units=UNITS)
    out = jax.jit(layer.apply)(variables, x)
    assert np.allclose(out, expected, rtol=1e-6, atol=1e-7) == equal


@pytest.mark.parametrize("layer, kwargs, match", [
    (SeqSelfAttention, dict(width=0), "width"),
    (SeqSelfAttention, dict(score="cosine"), "score"),
    (SeqSelfAttention, dict(units=0), "units"),
    (MultiHeadSelfAttention, dict(widths=()), "widths"),
    (MultiHeadSelfAttention, dict(widths=(5, 2.5)), "width"),
])
def test_invalid_settings_raise_at_construction(layer, kwargs, match):
  with pytest.raises(ValueError, match=match):
    layer(**kwargs)
