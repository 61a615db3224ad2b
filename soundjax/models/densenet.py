"""DenseNet with squeeze-excitation of Cochlear.ai (Jeong & Lim, DCASE 2018 Task 2), Paper 4's
"dense-mel" victim.

Published (`finejuly/dcase2018_task2_cochlearai` `utils/model.py`, commented `build_model_mel`):
raw waveform in; BN on the waveform; a kapre decibel mel-spectrogram inside the graph (32 kHz,
n_fft 1024, hop 128, 64 mels); BN per mel band; a 3x3 conv with 15 filters concatenated to its
input; 8 blocks of [BN-ReLU-Conv1x1, BN-ReLU-Conv3x3, squeeze-excitation, concat with the block
input] with min(512, 16*2^i) filters, each followed by MaxPool 2x2 (SAME); BN-ReLU; 8 heads of
Dense + global average + softmax whose probabilities are averaged.

Differences: the front end is `soundjax.frontend.log_mel` (librosa power dB) instead of kapre's
magnitude dB (a factor of 2 in dB, absorbed by the BN that follows); the model returns
LOG-probabilities `log(mean_k softmax_k)` instead of probabilities, so that softmax of the output
is the published averaged prediction and softmax cross-entropy on it is the published loss.
"""

import math
from typing import ClassVar, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from soundjax import frontend
from soundjax.models.layers import (
  BN_MOMENTUM,
  batch_norm,
  check_momentum,
  check_positive,
  max_pool,
  pool_window,
)


class DenseSEBlock(nn.Module):
  """BN-ReLU-Conv1x1, BN-ReLU-Conv3x3, squeeze-excitation, then concat with the input.

  Attributes:
    features: filters of both convolutions (>= 2, the SE bottleneck has features // 2).
    bn_momentum: momentum of the BatchNorm running statistics.
  """
  features: int
  bn_momentum: float = BN_MOMENTUM

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    y = x
    for kernel in ((1, 1), (3, 3)):
      y = nn.relu(batch_norm(train, self.bn_momentum)(y))
      y = nn.Conv(self.features, kernel, padding="SAME")(y)
    se = jnp.mean(y, axis=(1, 2), keepdims=True)
    se = nn.relu(nn.Dense(self.features // 2)(se))
    se = nn.sigmoid(nn.Dense(self.features)(se))
    return jnp.concatenate([y * se, x], axis=-1)


class DenseNetSE(nn.Module):
  """DenseNet-SE on the raw waveform, with its log-mel front end inside.

  Attributes:
    num_classes: number of output classes.
    sample_rate: front-end sample rate in Hz.
    n_fft: front-end FFT size.
    hop_length: front-end hop in samples (128 published).
    n_mels: mel bands.
    fmax: highest mel frequency (None: sample_rate / 2, as published).
    num_blocks: dense blocks, each followed by a 2x2 pool (8 published).
    base_filters: filters of block i are min(max_filters, base_filters * 2**i) (16 published).
    max_filters: cap on the block filters (512 published).
    stem_features: filters of the 3x3 stem conv concatenated to the log-mel (15 published).
    num_heads: softmax heads whose probabilities are averaged (8 published).
    precise: front end with the double-float FFT (see `frontend.log_mel`), 3-5x slower.
    bn_momentum: momentum of the BatchNorm running statistics.

  Example:
    >>> model = DenseNetSE(num_classes=41)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 64000)))
    >>> log_probs = model.apply(variables, jnp.zeros((2, 64000)))  # [2, 41]
  """
  input_kind: ClassVar[str] = "waveform"

  num_classes: int
  sample_rate: int = 32000
  n_fft: int = 1024
  hop_length: int = 128
  n_mels: int = 64
  fmax: Optional[float] = None
  num_blocks: int = 8
  base_filters: int = 16
  max_filters: int = 512
  stem_features: int = 15
  num_heads: int = 8
  precise: bool = False
  bn_momentum: float = BN_MOMENTUM

  def __post_init__(self):
    check_positive(num_classes=self.num_classes, sample_rate=self.sample_rate, n_fft=self.n_fft,
                   hop_length=self.hop_length, n_mels=self.n_mels, num_blocks=self.num_blocks,
                   stem_features=self.stem_features, num_heads=self.num_heads)
    if self.base_filters < 2 or self.max_filters < 2:
      raise ValueError(f"base_filters and max_filters must be >= 2 for the SE bottleneck, got "
                       f"{self.base_filters} and {self.max_filters}")
    check_momentum(self.bn_momentum)
    self.log_mel()  # so that invalid front-end settings fail here, not at the first trace
    super().__post_init__()

  def log_mel(self):
    """Returns the per-example front end `f(waveform[samples]) -> [frames, n_mels]`."""
    return frontend.log_mel(sample_rate=self.sample_rate, n_fft=self.n_fft,
                            hop_length=self.hop_length, n_mels=self.n_mels, fmax=self.fmax,
                            precise=self.precise)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps waveforms `[batch, samples]` to log averaged probabilities `[batch, num_classes]`."""
    def bn() -> nn.BatchNorm:
      return batch_norm(train, self.bn_momentum)

    x = bn()(x[..., None])[..., 0]  # one mean and variance over all samples, as published
    x = bn()(jax.vmap(self.log_mel())(x))[..., None]  # BN per mel band
    x = jnp.concatenate([x, nn.Conv(self.stem_features, (3, 3), padding="SAME")(x)], axis=-1)
    for i in range(self.num_blocks):
      x = DenseSEBlock(min(self.max_filters, self.base_filters * 2**i), self.bn_momentum)(x, train)
      x = max_pool(x, pool_window(x.shape[1:-1], (2, 2)), padding="SAME")
    x = jnp.mean(nn.relu(bn()(x)), axis=(1, 2))
    # Dense per position then global average (published) equals global average then Dense;
    # one Dense holds the independent heads side by side.
    logits = nn.Dense(self.num_heads * self.num_classes)(x)
    logits = logits.reshape(x.shape[0], self.num_heads, self.num_classes)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return jax.scipy.special.logsumexp(log_probs, axis=1) - math.log(self.num_heads)
