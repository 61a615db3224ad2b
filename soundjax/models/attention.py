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
of the frames each frame sees, gathered (the additive form's hidden tensor is then
`[frames, width, units]`, not `[frames, frames, units]`: 6.4 MB instead of 64 MB per 500-frame
example at width 50 and 64 units). Heads over every frame score the dense `[frames, frames]`
matrix, masked with `jnp.where` (causal for `history_only`). Both give the same weights. Heads
that share one score function share its band scores too: every narrower band is a slice of the
widest (`band_offset`), so a multi-head layer of widths 5, 25, 50 and 100 scores 100 frames per
frame, not 180.
"""

import functools
from typing import Optional, Sequence, Tuple

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


def band(frames: int, width: int, history_only: bool = False) -> Tuple[np.ndarray, np.ndarray]:
  """The frames each frame's window holds, as `window_mask` bands them, for a band of scores.

  Returns:
    `(j, inside)`, both `[frames, width]`: `j[i, d]` is the d-th frame of frame i's window,
    clipped into the clip, and `inside[i, d]` whether it really lies in the clip.
  """
  lower = -(width - 1) if history_only else -(width // 2)
  j = np.arange(frames)[:, None] + lower + np.arange(width)[None, :]
  return np.clip(j, 0, frames - 1), (j >= 0) & (j < frames)


def band_offset(width: int, widest: int, history_only: bool = False) -> int:
  """Where the band of `width` starts inside the band of `widest >= width` (`band`): both hold
  the same frames at `[offset, offset + width)`."""
  if history_only:
    return widest - width
  return widest // 2 - width // 2


def _banded(frames: int, width: Optional[int]) -> bool:
  """Whether a head of `width` scores its band rather than the dense matrix."""
  return width is not None and width < frames


class AdditiveScore(nn.Module):
  """Raw additive scores `e_ij = w_a^T tanh(W_t^T h_i + W_x^T h_j + b_h) + b_a`: `[..., T, T]`,
  or `[..., T, width]` over the frames `j[i, d]` of a band (see `band`).

  Parameters: `query` (`W_t`, `b_h`), `key` (`W_x`), `energy` (`w_a`, `b_a`).
  """
  units: int = 64

  @nn.compact
  def __call__(self, h: jax.Array, j: Optional[np.ndarray] = None) -> jax.Array:
    dense = lambda features, name, bias: nn.Dense(features, use_bias=bias, name=name,
                                                  kernel_init=_KERNEL_INIT)
    query = dense(self.units, "query", True)(h)[..., :, None, :]  # b_h once, on the query side
    key = dense(self.units, "key", False)(h)
    key = key[..., None, :, :] if j is None else key[..., j, :]
    return dense(1, "energy", True)(jnp.tanh(query + key))[..., 0]


class DotScore(nn.Module):
  """Raw bilinear scores `e_ij = h_i^T W_a h_j + b_a` (keras-self-attention's multiplicative),
  dense or over a band's frames `j[i, d]`."""

  @nn.compact
  def __call__(self, h: jax.Array, j: Optional[np.ndarray] = None) -> jax.Array:
    features = h.shape[-1]
    w_a = self.param("w_a", _KERNEL_INIT, (features, features))
    b_a = self.param("b_a", nn.initializers.zeros, ())
    if j is None:
      return jnp.einsum("...id,...jd->...ij", h @ w_a, h) + b_a
    return jnp.einsum("...id,...ijd->...ij", h @ w_a, h[..., j, :]) + b_a


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
    j, inside = band(frames, width, history_only)
    scores = nn.sigmoid(band_scores())  # [..., T, width]
    weights = jax.nn.softmax(jnp.where(jnp.broadcast_to(inside, scores.shape), scores, -jnp.inf),
                             axis=-1)
    context = jnp.einsum("...iw,...iwd->...id", weights, h[..., j, :])
    rows = np.broadcast_to(np.arange(frames)[:, None], j.shape)
    kept = jnp.where(jnp.broadcast_to(inside, weights.shape), weights, 0.0)
    dense = jnp.zeros(weights.shape[:-1] + (frames,), weights.dtype).at[..., rows, j].add(kept)
    return context, dense
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
    band_scores = lambda: scorer(h, band(h.shape[-2], self.width, self.history_only)[0])
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
        return scorers[k](h, band(frames, width, self.history_only)[0])
      if not shared_band:
        shared_band[0] = scorers[0](h, band(frames, widest, self.history_only)[0])
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
