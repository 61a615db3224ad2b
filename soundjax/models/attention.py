"""Memory-controlled sequential self-attention (Paper 3: Pankajakshan et al., Interspeech 2020).

Published (`arjunp17/MemoryControlled-MultiheadSelfAtt`, a copy of CyberZHG's keras-self-attention
`SeqSelfAttention(units=64, additive, attention_activation='sigmoid', attention_width=50)`):
scores `e_ij = sigmoid(w_a^T tanh(W_t^T h_i + W_x^T h_j + b_h) + b_a)`, a softmax over the frames
`j` frame `i` may see, and the output `a . H`: no value projection, no residual. Frame `i` sees
`j in [i - w//2, i - w//2 + w)`, or `[i - w + 1, i]` with `history_only`.

The public multi-width layers never apply their width masks (the masked product is not assigned,
so every head is full attention) and score the heads from batch element 0, frame 0. Here each
head's mask is applied, and heads are mixed per example and frame by a softmax over a learned
score of each head's context vector.

A head whose width is shorter than the sequence scores only its band: `[frames, width]` scores
of the frames each frame sees, one band offset at a time (`band_pairs`: the additive form's
hidden `[frames, width, units]` tensor is never written), and mixes the frames by its band's
weights laid out as the dense matrix (`band_to_dense`). Heads over every frame score the dense
`[frames, frames]` matrix (the additive form one key frame at a time, `all_pairs`, so that
`[frames, frames, units]` is not written either), masked with `jnp.where` (causal for
`history_only`). Both give the same weights. Heads that share one score function share its band
scores too: every narrower band is a slice of the widest (`band_offset`), so a multi-head layer
of widths 5, 25, 50 and 100 scores 100 frames per frame, not 180.
"""

import functools
from typing import Callable, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from soundjax import checks

SCORES = ("additive", "dot")
# keras-self-attention's defaults: glorot-normal weights, zero biases.
_KERNEL_INIT = nn.initializers.glorot_normal()


def window_mask(frames: int, width: Optional[int], history_only: bool = False) -> jax.Array:
  """`mask[i, j]`: whether frame `i` attends to frame `j`, as keras-self-attention bands it.

  Args:
    frames: sequence length (static).
    width: frames each frame sees; None: all of them (all the past ones with `history_only`,
      as keras-self-attention's width 1e9).
    history_only: a causal window `[i - width + 1, i]` instead of the centred
      `[i - width // 2, i - width // 2 + width)`.

  Returns:
    Boolean `[frames, frames]`; every row keeps its own frame, so a masked softmax is defined.
  """
  i = jnp.arange(frames)[:, None]
  j = jnp.arange(frames)[None, :]
  if width is None:
    return j <= i if history_only else jnp.ones((frames, frames), bool)
  lower = i - (width - 1) if history_only else i - width // 2
  return (lower <= j) & (j < lower + width)


def _lower(width: int, history_only: bool) -> int:
  """The offset of a band's first frame from its frame `i` (`band`)."""
  return -(width - 1) if history_only else -(width // 2)


def band(frames: int, width: int, history_only: bool = False) -> Tuple[np.ndarray, np.ndarray]:
  """The frames each frame's window holds, as `window_mask` bands them, for a band of scores.

  Returns:
    `(j, inside)`, both `[frames, width]`: `j[i, d]` is the d-th frame of frame i's window,
    clipped into the clip, and `inside[i, d]` whether it really lies in the clip.
  """
  lower = _lower(width, history_only)
  j = np.arange(frames)[:, None] + lower + np.arange(width)[None, :]
  return np.clip(j, 0, frames - 1), (j >= 0) & (j < frames)


def band_to_dense(x: jax.Array, history_only: bool = False) -> jax.Array:
  """A band's values `[..., T, width]` (`band`'s layout) as the `[..., T, T]` matrix
  `dense[i, j[i, d]] = x[i, d]`, zero off the band; the band's cells outside the clip are dropped.

  Pads each row by `T` zeros and reads the flat result `T + width - 1` to a row (the "skewing" of
  relative-position attention): copies only, where a scatter is slow on CPU, both ways.
  """
  *lead, frames, width = x.shape
  lower = _lower(width, history_only)
  span = frames + width - 1  # the padded clip: column p is frame p + lower
  flat = jnp.pad(x, [(0, 0)] * len(lead) + [(0, 0), (0, frames)]).reshape(*lead, -1)
  skewed = flat[..., :frames * span].reshape(*lead, frames, span)
  return skewed[..., -lower:-lower + frames]


def band_offset(width: int, widest: int, history_only: bool = False) -> int:
  """Where the band of `width` starts inside the band of `widest >= width` (`band`): both hold
  the same frames at `[offset, offset + width)`."""
  if history_only:
    return widest - width
  return widest // 2 - width // 2


def _banded(frames: int, width: Optional[int]) -> bool:
  """Whether a head of `width` scores its band rather than the dense matrix."""
  return width is not None and width < frames


def band_pairs(pair: Callable[[jax.Array, jax.Array], jax.Array], query: jax.Array,
               key: jax.Array, width: int, history_only: bool = False) -> jax.Array:
  """`pair(query[..., i, :], key[..., j[i, d], :])` for every frame `i` and cell `d` of its band.

  One band offset `d` at a time (a scan of `width` steps), each recomputed in the backward pass:
  the `[..., T, width, units]` tensor of every pair (200 MB per batch of 32 at 250 frames, width
  100 and 64 units) is never written, and no gather or scatter runs. On 2 CPU cores that makes
  the additive scores' gradient 5x faster than gathering the band's keys.

  Args:
    pair: `(query [..., T, U], key [..., T, U]) -> [..., T]`, one score per frame.
    query, key: `[..., T, U]`.
    width, history_only: the band (`band`).

  Returns:
    `[..., T, width]`; cells outside the clip pair the query with zeros (callers mask them).
  """
  frames, axis = key.shape[-2], key.ndim - 2
  lower = _lower(width, history_only)
  pad = [(0, 0)] * axis + [(-lower, width - 1 + lower), (0, 0)]
  padded = jnp.pad(key, pad)  # row p is frame p + lower

  @jax.checkpoint
  def offset(_, d):
    return None, pair(query, jax.lax.dynamic_slice_in_dim(padded, d, frames, axis=axis))

  _, scores = jax.lax.scan(offset, None, jnp.arange(width))
  return jnp.moveaxis(scores, 0, -1)


def all_pairs(pair: Callable[[jax.Array, jax.Array], jax.Array], query: jax.Array,
              key: jax.Array) -> jax.Array:
  """`pair(query[..., i, :], key[..., j, :])` for every pair of frames `i`, `j`: `[..., T, T]`.

  One key frame `j` at a time (a scan of `T` steps, each recomputed in the backward pass), as
  `band_pairs` does for a band: the `[..., T, T, units]` tensor of every pair (1 GB per batch of
  32 at 250 frames and 64 units, 4 GB at 500) is never written. Measured on 2 CPU cores, the
  gradient of an additive head's weights (scores, softmax, product with the frames) at batch 32:
  508 -> 143 ms at 250 frames, 2.6 s -> 0.57 s at 500.

  Args:
    pair: `(query [..., T, U], key [..., 1, U]) -> [..., T]`, one score per query frame.
    query, key: `[..., T, U]`.
  """
  @jax.checkpoint
  def column(_, frame):
    return None, pair(query, frame[..., None, :])

  _, scores = jax.lax.scan(column, None, jnp.moveaxis(key, -2, 0))
  return jnp.moveaxis(scores, 0, -1)


class _Energy(nn.Module):
  """`nn.Dense(1)`'s parameters (same names, shapes and initialisation) for callers that apply
  them inside a scan: `(w [features], b [])`."""
  features: int

  @nn.compact
  def __call__(self) -> Tuple[jax.Array, jax.Array]:
    kernel = self.param("kernel", _KERNEL_INIT, (self.features, 1))
    return kernel[:, 0], self.param("bias", nn.initializers.zeros, (1,))[0]


class AdditiveScore(nn.Module):
  """Raw additive scores `e_ij = w_a^T tanh(W_t^T h_i + W_x^T h_j + b_h) + b_a`: `[..., T, T]`
  (`all_pairs`), or `[..., T, width]` over the frames `j[i, d]` of a band (`band`; `band_pairs`).

  Parameters: `query` (`W_t`, `b_h`), `key` (`W_x`), `energy` (`w_a`, `b_a`).
  """
  units: int = 64

  @nn.compact
  def __call__(self, h: jax.Array, window: Optional[Tuple[int, bool]] = None) -> jax.Array:
    """Scores every frame pair, or with `window=(width, history_only)` only the band's."""
    dense = lambda name, bias: nn.Dense(self.units, use_bias=bias, name=name,
                                        kernel_init=_KERNEL_INIT)
    query = dense("query", True)(h)  # b_h once, on the query side
    key = dense("key", False)(h)
    w_a, b_a = _Energy(self.units, name="energy")()
    energy = lambda q, k: jnp.tanh(q + k) @ w_a
    if window is None:
      return all_pairs(energy, query, key) + b_a
    return band_pairs(energy, query, key, *window) + b_a


class DotScore(nn.Module):
  """Raw bilinear scores `e_ij = h_i^T W_a h_j + b_a` (keras-self-attention's multiplicative),
  dense or, with `window=(width, history_only)`, over a band's frames `j[i, d]`."""

  @nn.compact
  def __call__(self, h: jax.Array, window: Optional[Tuple[int, bool]] = None) -> jax.Array:
    features = h.shape[-1]
    w_a = self.param("w_a", _KERNEL_INIT, (features, features))
    b_a = self.param("b_a", nn.initializers.zeros, ())
    if window is None:
      return jnp.einsum("...id,...jd->...ij", h @ w_a, h) + b_a
    return band_pairs(lambda q, k: jnp.sum(q * k, axis=-1), h @ w_a, h, *window) + b_a


def _scorer(score: str, units: int, name: str) -> nn.Module:
  return AdditiveScore(units, name=name) if score == "additive" else DotScore(name=name)


def _check(widths: Sequence[Optional[int]], score: str, units: int) -> None:
  if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
    raise ValueError(f"widths must be a non-empty sequence of positive ints or None, "
                     f"got {widths!r}")
  for width in widths:
    checks.optional_integer("attention width", width)
  checks.one_of("score", score, SCORES)
  checks.integer("units", units)


def _head(h: jax.Array, width: Optional[int], history_only: bool, band_scores,
          dense_scores) -> Tuple[jax.Array, jax.Array]:
  """One head's context `[..., T, D]` and weights `[..., T, T]` (the softmax of the sigmoid of
  its scores over its window; zero outside it).

  The softmax after `where` subtracts the max over allowed frames where the published
  `exp(e - max) * mask / (sum + 1e-7)` subtracts the max over all: the same ratio, up to Keras'
  epsilon. `band_scores()` gives the raw scores `[..., T, width]` of a banded head's band,
  `dense_scores()` the (shared) dense scores of a head that is not banded.
  """
  frames = h.shape[-2]
  if _banded(frames, width):
    _, inside = band(frames, width, history_only)
    scores = nn.sigmoid(band_scores())  # [..., T, width]
    weights = jax.nn.softmax(jnp.where(jnp.broadcast_to(inside, scores.shape), scores, -jnp.inf),
                             axis=-1)
    dense = band_to_dense(weights, history_only)
    return dense @ h, dense
  scores = nn.sigmoid(dense_scores())
  mask = jnp.broadcast_to(window_mask(frames, width, history_only), scores.shape)
  weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
  return weights @ h, weights


class SeqSelfAttention(nn.Module):
  """The published single-width layer: `[..., frames, features] -> [..., frames, features]`.

  The attention weights `[..., frames, frames]` are sown as `intermediates/weights`.

  Attributes:
    width: frames each frame attends to (50 published, 1 s at 50 fps); None: all of them
      (all past ones with `history_only`).
    history_only: attend to the last `width` frames, the current one included, only.
    score: "additive" (published) or "dot" (bilinear `h_i^T W_a h_j + b_a`).
    units: width of the additive score's hidden layer (64 published; unused by "dot").

  Example:
    >>> layer = SeqSelfAttention(width=50)
    >>> variables = layer.init(jax.random.key(0), jnp.zeros((1, 500, 64)))
  """
  width: Optional[int] = 50
  history_only: bool = False
  score: str = "additive"
  units: int = 64

  def __post_init__(self):
    _check((self.width,), self.score, self.units)
    super().__post_init__()

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    scorer = _scorer(self.score, self.units, "score")
    band_scores = lambda: scorer(h, (self.width, self.history_only))
    context, weights = _head(h, self.width, self.history_only, band_scores, lambda: scorer(h))
    self.sow("intermediates", "weights", weights)
    return context


class MultiHeadSelfAttention(nn.Module):
  """Heads of explicit widths over one sequence, mixed per example and frame.

  Head `k` is `SeqSelfAttention(widths[k])`, its context `c_k[i]`. The output is
  `sum_k beta_k[i] c_k[i]` with `beta[i] = softmax_k(c_k[i] . u + b_k)` (`u`: `head_score`,
  `b`: `head_bias`): the mix depends on each frame's contexts, and since the betas sum to one,
  heads that agree give their common context. One width gives `SeqSelfAttention` itself (same
  parameter tree, no mixing). Per-head contexts `[..., K, frames, features]` are sown as
  `intermediates/heads`, weights `[..., K, frames, frames]` as `intermediates/weights`.

  Attributes:
    widths: one width per head (None: all frames), e.g. `(5, 10, 25, 50)`.
    history_only: causal windows for every head.
    score: "additive" (published) or "dot".
    units: hidden width of the additive score.
    share_scores: one score function for every head, as published (heads differ only by
      width); else one per head.

  Example:
    >>> layer = MultiHeadSelfAttention(widths=(10, 25, 50))
    >>> variables = layer.init(jax.random.key(0), jnp.zeros((1, 500, 64)))
  """
  widths: Sequence[Optional[int]] = (50,)
  history_only: bool = False
  score: str = "additive"
  units: int = 64
  share_scores: bool = True

  def __post_init__(self):
    _check(self.widths, self.score, self.units)
    super().__post_init__()

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    heads = len(self.widths)
    shared = self.share_scores or heads == 1
    if shared:
      scorers = [_scorer(self.score, self.units, "score")] * heads
    else:
      scorers = [_scorer(self.score, self.units, f"score_{k}") for k in range(heads)]
    frames = h.shape[-2]
    dense = {}  # scorer -> its dense scores, computed once for all the heads it scores densely
    widest = max((w for w in self.widths if _banded(frames, w)), default=None)
    shared_band = {}  # the shared scorer's scores of the widest band, sliced by every head

    def dense_scores(k: int) -> jax.Array:
      key = 0 if shared else k
      if key not in dense:
        dense[key] = scorers[key](h)
      return dense[key]

    def band_scores(k: int) -> jax.Array:
      width = self.widths[k]
      if not shared:
        return scorers[k](h, (width, self.history_only))
      if not shared_band:
        shared_band[0] = scorers[0](h, (widest, self.history_only))
      start = band_offset(width, widest, self.history_only)
      return shared_band[0][..., start:start + width]

    outputs = [_head(h, width, self.history_only, functools.partial(band_scores, k),
                     functools.partial(dense_scores, k)) for k, width in enumerate(self.widths)]
    contexts = jnp.stack([context for context, _ in outputs], axis=-3)
    self.sow("intermediates", "weights", jnp.stack([weights for _, weights in outputs], axis=-3))
    self.sow("intermediates", "heads", contexts)
    if heads == 1:
      return contexts[..., 0, :, :]
    logits = nn.Dense(1, use_bias=False, kernel_init=_KERNEL_INIT, name="head_score")(contexts)
    bias = self.param("head_bias", nn.initializers.zeros, (heads, 1))
    logits = logits[..., 0] + jnp.broadcast_to(bias, logits.shape[:-1])
    beta = jax.nn.softmax(logits, axis=-2)  # over heads, per example and frame
    return jnp.sum(beta[..., None] * contexts, axis=-3)
