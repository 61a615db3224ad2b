"""Raw-waveform 1-D CNN, the stand-in for Paper 4's "dense-wav" victim.

The Cochlear.ai dense-wav architecture was never published (its weights were a download), so
this is the M5 network of Dai et al. (ICASSP 2017, "Very deep convolutional neural networks for
raw waveforms"), the usual raw-audio baseline: a wide strided conv stem (80 taps, stride 4),
then [Conv1D 3 + BN + ReLU + MaxPool 4] blocks with 128/128/256/512 channels, global average
pooling and a Dense layer.
"""

from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from soundjax import checks
from soundjax.models.layers import (
  BN_MOMENTUM,
  ConvBNReLU,
  check_momentum,
  check_positive,
  max_pool,
  pool_window,
)


class WaveformCNN(nn.Module):
  """1-D CNN on raw waveforms `[batch, samples]`.

  Attributes:
    num_classes: number of output logits.
    channels: output channels of the stem and of each following block.
    stem_kernel: taps of the first (strided) convolution.
    stem_stride: stride of the first convolution.
    kernel: taps of the later convolutions.
    pool: max-pool window after every convolution; an axis shorter than it is not pooled.
    bn_momentum: momentum of the BatchNorm running statistics.

  Example:
    >>> model = WaveformCNN(num_classes=41)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32000)))
    >>> logits = model.apply(variables, jnp.zeros((4, 32000)))  # [4, 41]
  """
  input_kind: ClassVar[str] = "waveform"

  num_classes: int
  channels: Sequence[int] = (128, 128, 256, 512)
  stem_kernel: int = 80
  stem_stride: int = 4
  kernel: int = 3
  pool: int = 4
  bn_momentum: float = BN_MOMENTUM

  def __post_init__(self):
    check_positive(num_classes=self.num_classes, stem_kernel=self.stem_kernel,
                   stem_stride=self.stem_stride, kernel=self.kernel, pool=self.pool)
    checks.positive_integers("channels", self.channels)
    check_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps waveforms `[batch, samples]` to logits `[batch, num_classes]`."""
    x = x[..., None]
    for i, features in enumerate(self.channels):
      kernel, stride = (self.stem_kernel, self.stem_stride) if i == 0 else (self.kernel, 1)
      x = ConvBNReLU(features, (kernel,), strides=(stride,), bn_momentum=self.bn_momentum)(x, train)
      x = max_pool(x, pool_window(x.shape[1:-1], (self.pool,)))
    x = jnp.mean(x, axis=1)
    return nn.Dense(self.num_classes)(x)
