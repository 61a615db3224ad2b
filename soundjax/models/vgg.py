"""VGG13-style log-mel classifier of Iqbal et al. (DCASE 2018 Task 2), a victim of Paper 4.

Published (`tqbl/dcase2018_task2` `task2/convnet.py`): five blocks of [Conv 3x3 -> ReLU -> BN] x2
+ MaxPool 2x2 with 64/128/256/512/512 channels, GlobalAveragePooling2D, Dense(41, softmax), on
128-frame x 64-mel chunks. Here the Dense returns logits and the class count is an argument.
"""

from typing import Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from soundjax import checks
from soundjax.models.layers import (
  BN_MOMENTUM,
  ConvStack,
  check_momentum,
  check_positive,
  iqbal_conv,
)


class VGG(nn.Module):
  """VGG13-style CNN on log-mel input.

  Attributes:
    num_classes: number of output logits.
    channels: output channels of each conv block (one 2x2 pool per block).
    unit: conv unit factory `unit(features, bn_momentum=...)` (see `layers.ConvStack`).
    bn_momentum: momentum of the BatchNorm running statistics (0.99 published).

  Example:
    >>> model = VGG(num_classes=41)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 128, 64)))
    >>> logits = model.apply(variables, jnp.zeros((8, 128, 64)))  # [8, 41]
  """
  input_kind: ClassVar[str] = "logmel"

  num_classes: int
  channels: Sequence[int] = (64, 128, 256, 512, 512)
  unit: Callable[..., nn.Module] = iqbal_conv
  bn_momentum: float = BN_MOMENTUM

  def __post_init__(self):
    check_positive(num_classes=self.num_classes)
    checks.positive_integers("channels", self.channels)
    check_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps log-mels `[batch, frames, n_mels]` to logits `[batch, num_classes]`."""
    x = ConvStack(self.channels, self.unit, self.bn_momentum)(x[..., None], train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)
