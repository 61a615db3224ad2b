"""Embedding CNN of Paper 2 (Delgado et al., SMC 2022): vocal-percussion embeddings, softmax heads.

Published (`alejandrodl/vocal-percussion-transcription` `src/models/networks.py`, `CNN_Interim`
and `CNN_Interim_Phonemes`) on 64 mels x 48 frames: four blocks of [Conv 3x3 (SAME) -> BN ->
ReLU] x2 + MaxPool 2x2 (VALID) with 8/16/32/64 channels (64x48 -> 4x3x64), Flatten, a linear
Dense(latent_dim) whose output is the embedding (32-d for AVP, 16-d for LVT), then one
Dense(num_labels, softmax) head, or two (onset, nucleus; loss weights 0.6/0.4) for phonemes.
Keras defaults throughout: glorot-uniform kernels, zero biases, BN momentum 0.99, epsilon 1e-3.

Not copied: the public heads end in a softmax and are trained with
`SparseCategoricalCrossentropy(from_logits=True)`, i.e. a softmax applied twice. Here the heads
return logits and the (single) softmax is in the loss.

Input is time-major `[batch, frames, n_mels]` (48 x 64 published), the transpose of Keras'
`(64, 48, 1)`; the flattened features are therefore ordered (frames, mels, channels), which only
matters when porting the published Dense weights. The pools are VALID and the input must divide
exactly (frames and mels multiples of 2 ** len(channels)): an input that would be cropped raises
instead, since the patches are padded or truncated to a fixed size upstream anyway.
"""

import numbers
from typing import Callable, ClassVar, Optional, Sequence

import flax.linen as nn
import jax

from soundjax import checks
from soundjax.models.layers import BN_MOMENTUM, batch_norm, check_momentum, max_pool
from soundjax.types import FrontEnd, Params

# Keras' default kernel initialiser (the published model is Keras; biases start at 0 in both).
_KERNEL_INIT = nn.initializers.glorot_uniform()


class EmbeddingTrunk(nn.Module):
  """The conv blocks and the linear embedding: `[batch, frames, n_mels]` -> `[batch, dim]`.

  Attributes:
    channels: output channels per block (two SAME 3x3 conv units, then a 2x2 max-pool).
    embedding_dim: width of the linear embedding layer.
    bn_momentum: momentum of the BatchNorm running statistics.
  """
  channels: Sequence[int]
  embedding_dim: int
  bn_momentum: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 3:
      raise ValueError(f"EmbeddingCNN takes log-mels [batch, frames, n_mels], got shape {x.shape}")
    factor = 2 ** len(self.channels)
    if any(size < factor or size % factor for size in x.shape[1:]):
      raise ValueError(f"EmbeddingCNN's {len(self.channels)} 2x2 max-pools need frames and n_mels "
                       f"that are positive multiples of {factor}, got input shape {x.shape}; pad "
                       f"or crop the patches (published: 48 frames x 64 mels)")
    x = x[..., None]
    for features in self.channels:
      for _ in range(2):
        x = nn.Conv(features, (3, 3), padding="SAME", kernel_init=_KERNEL_INIT)(x)
        x = nn.relu(batch_norm(train, self.bn_momentum)(x))  # Conv -> BN -> ReLU, as published
      x = max_pool(x, (2, 2))
    x = x.reshape(x.shape[0], -1)
    # No activation: the embedding is the affine map the heads (and KNNs) read.
    return nn.Dense(self.embedding_dim, kernel_init=_KERNEL_INIT, name="embedding")(x)


class EmbeddingCNN(nn.Module):
  """Paper 2's embedding network: conv trunk, linear embedding, one or more logit heads.

  The output mirrors `num_classes`: an int gives one head and logits `[batch, num_classes]`,
  exactly like every other model, so the training loop, `losses.model_logits`, attacks and
  attributions apply unchanged; a sequence, e.g. `(13, 16)` for the phoneme model's onset and
  nucleus, gives a tuple of logits `([batch, 13], [batch, 16])` in that order, whose weighted
  loss (0.6/0.4 published) the caller writes (`losses.model_logits` takes one head only: select a
  head with `lambda v, x: model.apply(v, x[None])[i][0]`). A tuple (not a dict) keeps the output
  a plain pytree with no head names to agree on. `embed` (or `embedding_fn` per example) returns
  the embedding, the input of every head.

  Parameters: `params/trunk/...` (convs, BatchNorms, `embedding`) and `params/heads_<i>`.

  Attributes:
    num_classes: classes of the single head (int), or of each head (sequence).
    embedding_dim: embedding width (32 for AVP, 16 for LVT published).
    channels: output channels per conv block; frames and mels must be multiples of
      `2 ** len(channels)` (16 published) and, since the embedding layer reads the flattened
      map, equal to those the variables were initialised with.
    bn_momentum: momentum of the BatchNorm running statistics (Keras' 0.99 published).

  Example:
    >>> model = EmbeddingCNN(num_classes=4, embedding_dim=32)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 48, 64)))
    >>> logits = model.apply(variables, jnp.zeros((8, 48, 64)))  # [8, 4]
    >>> z = model.apply(variables, jnp.zeros((8, 48, 64)), method=EmbeddingCNN.embed)  # [8, 32]
    >>> onset, nucleus = EmbeddingCNN(num_classes=(13, 16)).apply(...)  # two heads
  """
  input_kind: ClassVar[str] = "logmel"

  num_classes: int | Sequence[int]
  embedding_dim: int = 32
  channels: Sequence[int] = (8, 16, 32, 64)
  bn_momentum: float = BN_MOMENTUM

  def __post_init__(self):
    if not checks.is_integer(self.num_classes, 1):
      try:
        checks.positive_integers("num_classes", self.num_classes)
      except ValueError:
        raise ValueError(f"num_classes must be an integer >= 1 (one head) or a non-empty "
                         f"sequence of them (one head each), got {self.num_classes!r}") from None
    checks.integer("embedding_dim", self.embedding_dim)
    checks.positive_integers("channels", self.channels)
    check_momentum(self.bn_momentum)
    super().__post_init__()

  @property
  def head_sizes(self) -> tuple[int, ...]:
    """The classes of each head, in output order."""
    if isinstance(self.num_classes, numbers.Integral):
      return (int(self.num_classes),)
    return tuple(int(n) for n in self.num_classes)

  def setup(self):
    self.trunk = EmbeddingTrunk(self.channels, self.embedding_dim, self.bn_momentum)
    self.heads = [nn.Dense(n, kernel_init=_KERNEL_INIT) for n in self.head_sizes]

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps log-mels `[batch, frames, n_mels]` to embeddings `[batch, embedding_dim]`."""
    return self.trunk(x, train)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array | tuple[jax.Array, ...]:
    """Maps `[batch, frames, n_mels]` to logits `[batch, num_classes]`, or a tuple of them (one
    per head) when `num_classes` is a sequence."""
    z = self.embed(x, train)
    logits = tuple(head(z) for head in self.heads)
    return logits[0] if isinstance(self.num_classes, numbers.Integral) else logits


def embedding_fn(model: EmbeddingCNN, *,
                 frontend: Optional[FrontEnd] = None) -> Callable[[Params, jax.Array], jax.Array]:
  """Returns the per-example embedding `(variables, x) -> [embedding_dim]` of an `EmbeddingCNN`.

  The counterpart of `losses.model_logits`: one unbatched example, inference mode (running
  BatchNorm statistics), so `jax.vmap`, `jax.grad` w.r.t. `x`, and the attack and attribution
  libraries apply to the embedding as they do to logits.

  Args:
    model: the embedding network (one head or several: the embedding is the same).
    frontend: optional per-example transform applied to `x` first (e.g. `frontend.log_mel`), so
      gradients flow back to the waveform.

  Returns:
    `fn(variables, x) -> embedding[embedding_dim]` for one example `x[frames, n_mels]`.

  Example:
    >>> fn = embedding_fn(model)
    >>> z = jax.jit(jax.vmap(fn, in_axes=(None, 0)))(variables, xs)  # [batch, embedding_dim]
  """
  if not isinstance(model, EmbeddingCNN):
    raise TypeError(f"embedding_fn needs an EmbeddingCNN, got {type(model).__name__}")

  def fn(variables, x):
    features = frontend(x) if frontend is not None else x
    return model.apply(variables, features[None], method=EmbeddingCNN.embed)[0]

  return fn

