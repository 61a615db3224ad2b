"""Gated CNN (GCNN) of Iqbal et al. (DCASE 2018 Task 2), a victim of Paper 4.

Published (`tqbl/dcase2018_task2` `task2/gated_conv.py`, `convnet.py::gcnn`): the VGG13 topology
with each Conv -> ReLU -> BN replaced by a gated convolution (Dauphin et al. 2017: one conv with
2x filters, first half linear times sigmoid of the second half) -> BN, with no ReLU.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax

from soundjax.models.layers import BN_MOMENTUM, batch_norm
from soundjax.models.vgg import VGG


class GatedConvBN(nn.Module):
  """Gated linear unit convolution (linear * sigmoid) followed by BatchNorm.

  Attributes:
    features: output channels (the convolution itself has twice as many).
    kernel_size: kernel per spatial axis.
    bn_momentum: momentum of the BatchNorm running statistics.
  """
  features: int
  kernel_size: Sequence[int] = (3, 3)
  bn_momentum: float = BN_MOMENTUM

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nn.Conv(2 * self.features, tuple(self.kernel_size), padding="SAME")(x)
    x = x[..., :self.features] * nn.sigmoid(x[..., self.features:])
    return batch_norm(train, self.bn_momentum)(x)


class GatedCNN(VGG):
  """VGG13 topology with gated convolutions, on log-mel input `[batch, frames, n_mels]`.

  Attributes:
    num_classes: number of output logits.
    channels: output channels of each gated block (one 2x2 pool per block).
    unit: conv unit factory, gated by default.
    bn_momentum: momentum of the BatchNorm running statistics (0.99 published).

  Example:
    >>> model = GatedCNN(num_classes=41)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 128, 64)))
  """
  unit: Callable[..., nn.Module] = GatedConvBN
