"""CRNN of Iqbal et al. (DCASE 2018 Task 2), a victim of Paper 4.

Published (`tqbl/dcase2018_task2` `task2/convnet.py::crnn`): the VGG13 conv stack, the mean over
frequency, `Bidirectional(GRU(512, activation='relu', return_sequences=True))` (outputs of the two
directions concatenated), GlobalAveragePooling1D over time, Dense(41, softmax).
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


class CRNN(nn.Module):
  """Conv stack + bidirectional GRU on log-mel input.

  Attributes:
    num_classes: number of output logits.
    channels: output channels of each conv block (one 2x2 pool per block).
    hidden: GRU units per direction (512 published).
    unit: conv unit factory (`layers.iqbal_conv`; `gated.GatedConvBN` gives Iqbal's GCRNN).
    bn_momentum: momentum of the BatchNorm running statistics (0.99 published).

  Example:
    >>> model = CRNN(num_classes=41)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 128, 64)))
  """
  input_kind: ClassVar[str] = "logmel"

  num_classes: int
  channels: Sequence[int] = (64, 128, 256, 512, 512)
  hidden: int = 512
  unit: Callable[..., nn.Module] = iqbal_conv
  bn_momentum: float = BN_MOMENTUM

  def __post_init__(self):
    check_positive(num_classes=self.num_classes, hidden=self.hidden)
    checks.positive_integers("channels", self.channels)
    check_momentum(self.bn_momentum)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps log-mels `[batch, frames, n_mels]` to logits `[batch, num_classes]`."""
    x = ConvStack(self.channels, self.unit, self.bn_momentum)(x[..., None], train)
    x = jnp.mean(x, axis=2)  # [batch, time, channels]

    # Keras' GRU(activation='relu') applies ReLU where Flax's cell defaults to tanh.
    def gru() -> nn.RNN:
      return nn.RNN(nn.GRUCell(self.hidden, activation_fn=nn.relu))

    x = nn.Bidirectional(gru(), gru())(x)
    x = jnp.mean(x, axis=1)
    return nn.Dense(self.num_classes)(x)
