"""Singing-voice detection CNN of Jan Schlüter (ISMIR 2015/16), the sound model of Paper 1.

Published as ported to PyTorch in `VinodS7/investigate-gradients` `src/model.py` (`CNNModel`,
`model_type='CNN'`): VALID 3x3 convolutions 64 and 32, LeakyReLU, MaxPool 3, convolutions 128
and 64, LeakyReLU, MaxPool 3, flatten (64x11x7 for 115 frames x 80 mels), then Dropout-FC 256-
Dropout-FC 64-Dropout-FC 1 with LeakyReLU between and a sigmoid on the output; orthogonal
weights, zero biases, no batch norm. Here the output is the logit (apply a sigmoid loss).
"""

from typing import ClassVar, Sequence

import flax.linen as nn
import jax

from soundjax import checks
from soundjax.models.layers import check_min_size, check_positive, max_pool

# PyTorch's LeakyReLU default slope, used by the port.
_SLOPE = 0.01
# Two VALID 3x3 convs, a pool of 3, two more convs and a pool of 3 need >= 25 per axis.
_MIN_SIZE = 25


class SchlueterCNN(nn.Module):
  """Schlüter's singing-voice CNN on log-mel excerpts `[batch, frames, n_mels]` (115 x 80).

  Attributes:
    num_classes: number of output logits (1 published: one sigmoid logit).
    features: channels of the four convolutions.
    hidden: widths of the two hidden Dense layers.
    dropout_rate: dropout before each Dense layer (PyTorch's default 0.5).

  Example:
    >>> model = SchlueterCNN(num_classes=1)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 115, 80)))
    >>> logits = model.apply(variables, jnp.zeros((4, 115, 80)))  # [4, 1]
  """
  input_kind: ClassVar[str] = "logmel"

  num_classes: int
  features: Sequence[int] = (64, 32, 128, 64)
  hidden: Sequence[int] = (256, 64)
  dropout_rate: float = 0.5

  def __post_init__(self):
    check_positive(num_classes=self.num_classes)
    checks.positive_integers("features", self.features)
    checks.positive_integers("hidden", self.hidden)
    if len(self.features) != 4:
      raise ValueError(f"features must list the 4 conv widths, got {self.features!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps `[batch, frames, n_mels]` to logits `[batch, num_classes]`."""
    check_min_size(x, _MIN_SIZE, "SchlueterCNN")
    init = nn.initializers.orthogonal()
    x = x[..., None]
    for i, features in enumerate(self.features):
      x = nn.leaky_relu(nn.Conv(features, (3, 3), padding="VALID", kernel_init=init)(x), _SLOPE)
      if i % 2 == 1:
        x = max_pool(x, (3, 3))
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.leaky_relu(nn.Dense(width, kernel_init=init)(x), _SLOPE)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, kernel_init=init)(x)
