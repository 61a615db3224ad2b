"""CRNN sound event detector of Paper 3 (Pankajakshan et al., Interspeech 2020), frame-wise logits.

Published (`arjunp17/MemoryControlled-MultiheadSelfAtt` `attention_models/sed_model.py`, the
companion repo's `training/baselineSED.py` without attention) on 40 mels x 500 frames: three
blocks of `Conv2D(64, 5x5, same, activation='relu')`, BatchNormalization, Dropout(0.3) and a
max-pool over frequency only (5, 4, 2: 40 mels -> 1), a GRU(64, tanh, return_sequences), the
self-attention layer (`models.attention`) or none (the baseline), and a frame-wise
Dense(10, sigmoid). Here the output is the logit (the sigmoid is in the loss).

Not copied: the public `Reshape((64, -1))` + `Permute((2, 1))` does not transpose a
`(1, 500, 64)` map, so its GRU "frame t" mixes channels of frames 0, 7, 15, ... Here the pooled
map is flattened per frame, so frame t of the GRU input is frame t of the spectrogram.
The GRU is Flax's `GRUCell` (sigmoid gates, reset gate after the recurrent product, as in
tf.keras 2; standalone Keras 2 defaulted to hard-sigmoid gates and reset before).
"""

import math
from typing import Any, ClassVar, Mapping, Optional, Sequence

import flax.linen as nn
import jax

from soundjax import checks
from soundjax.models.attention import MultiHeadSelfAttention
from soundjax.models.layers import BN_MOMENTUM, batch_norm, check_momentum, max_pool

# The published Keras layers' initialiser (`glorot_uniform(seed=1)`).
_KERNEL_INIT = nn.initializers.glorot_uniform()


class FrequencyConvs(nn.Module):
  """The conv front: `[batch, frames, n_mels]` -> GRU input `[batch, frames, features]`.

  Each block is a SAME conv, ReLU, BatchNorm (the published order), dropout and a max-pool over
  frequency only; time is never pooled or mixed beyond the kernels (+-kernel_size//2 per conv).

  Attributes:
    channels: output channels per block.
    pools: frequency pool (and stride) per block; their product must divide n_mels.
    kernel_size: square conv kernel.
    dropout_rate: dropout after each BatchNorm.
    bn_momentum: momentum of the BatchNorm running statistics.
  """
  channels: Sequence[int]
  pools: Sequence[int]
  kernel_size: int
  dropout_rate: float
  bn_momentum: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 3:
      raise ValueError(f"CRNNSED takes log-mels [batch, frames, n_mels], got shape {x.shape}")
    total = math.prod(self.pools)
    if x.shape[2] % total:
      raise ValueError(f"CRNNSED pools {tuple(self.pools)} need n_mels divisible by {total}, "
                       f"got {x.shape[2]} mels")
    x = x[..., None]
    kernel = (self.kernel_size, self.kernel_size)
    for features, pool in zip(self.channels, self.pools):
      x = nn.Conv(features, kernel, padding="SAME", kernel_init=_KERNEL_INIT)(x)
      x = batch_norm(train, self.bn_momentum)(nn.relu(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = max_pool(x, (1, pool))
    # [batch, frames, mels', channels] -> [batch, frames, mels' * channels]: per frame.
    return x.reshape(x.shape[:2] + (-1,))


class CRNNSED(nn.Module):
  """Conv front, GRU, optional memory-controlled self-attention, frame-wise logits.

  `apply(variables, x, train=False)` maps log-mels `[batch, frames, n_mels]` to logits
  `[batch, frames, num_classes]` (one sigmoid per class and frame).

  Attributes:
    num_classes: event classes (10 for URBAN-SED).
    channels: conv channels per block.
    pools: frequency pool per block (their product must divide n_mels: 40 for 40 mels).
    kernel_size: square conv kernel.
    dropout_rate: dropout in every conv block.
    hidden: GRU units (per direction).
    bidirectional: a forward and a backward GRU, outputs concatenated (published: forward only).
    bn_momentum: momentum of the BatchNorm running statistics (Keras' 0.99 published).
    attention: None for the baseline, else the keyword arguments of
      `attention.MultiHeadSelfAttention` (`widths`, `history_only`, `score`, `units`,
      `share_scores`); `{"widths": (50,)}` is the published layer.

  Example:
    >>> model = CRNNSED(num_classes=10, attention={"widths": (50,)})
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 500, 40)))
    >>> logits = model.apply(variables, jnp.zeros((4, 500, 40)))  # [4, 500, 10]
  """
  input_kind: ClassVar[str] = "logmel"
  frame_wise: ClassVar[bool] = True

  num_classes: int
  channels: Sequence[int] = (64, 64, 64)
  pools: Sequence[int] = (5, 4, 2)
  kernel_size: int = 5
  dropout_rate: float = 0.3
  hidden: int = 64
  bidirectional: bool = False
  bn_momentum: float = BN_MOMENTUM
  attention: Optional[Mapping[str, Any]] = None

  def __post_init__(self):
    checks.integer("num_classes", self.num_classes)
    checks.positive_integers("channels", self.channels)
    checks.positive_integers("pools", self.pools)
    if len(self.pools) != len(self.channels):
      raise ValueError(f"pools {tuple(self.pools)} need one entry per conv block of channels "
                       f"{tuple(self.channels)}")
    checks.integer("kernel_size", self.kernel_size)
    checks.in_interval("dropout_rate", self.dropout_rate, 0.0, 1.0, closed_high=False)
    checks.integer("hidden", self.hidden)
    check_momentum(self.bn_momentum)
    if self.attention is not None:
      self._attention_layer(parent=None)  # Raises here on bad settings, not at the first call.
    super().__post_init__()

  def _attention_layer(self, **kwargs: Any) -> MultiHeadSelfAttention:
    try:
      return MultiHeadSelfAttention(**dict(self.attention), **kwargs)
    except TypeError as error:  # an unknown setting, or not a mapping
      raise ValueError(f"attention must be None or MultiHeadSelfAttention settings "
                       f"(widths, history_only, score, units, share_scores): {error}") from error

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps `[batch, frames, n_mels]` to frame-wise logits `[batch, frames, num_classes]`."""
    x = FrequencyConvs(self.channels, self.pools, self.kernel_size, self.dropout_rate,
                       self.bn_momentum, name="convs")(x, train)

    # The cells are built in this scope, so their names are what the parameter tree shows.
    def gru(name: str) -> nn.RNN:
      return nn.RNN(nn.GRUCell(self.hidden, kernel_init=_KERNEL_INIT, name=name))

    if self.bidirectional:
      x = nn.Bidirectional(gru("gru_forward"), gru("gru_backward"))(x)
    else:
      x = gru("gru")(x)
    if self.attention is not None:
      x = self._attention_layer(name="attention")(x)
    return nn.Dense(self.num_classes, kernel_init=_KERNEL_INIT, name="classifier")(x)
