"""The digit classifier of Paper 1 (the PyTorch MNIST example `Net`).

Published (`VinodS7/investigate-gradients` `src/model.py::Net`): VALID 3x3 convs 32 and 64 with
ReLU, MaxPool 2, Dropout .25, flatten, Dense 128, ReLU, Dropout .5, Dense to C classes
(log-softmax) or to 1 output (sigmoid). Here the output is the logits, for 28x28 MNIST or 8x8
scikit-learn digits alike.
"""

from typing import ClassVar, Sequence

import flax.linen as nn
import jax

from soundjax import checks
from soundjax.models.layers import check_min_size, check_positive, max_pool


class DigitsCNN(nn.Module):
  """MNIST `Net` on images `[batch, height, width]`.

  Attributes:
    num_classes: number of output logits (1 for the sigmoid set-up).
    features: channels of the two convolutions.
    hidden: width of the hidden Dense layer.
    dropout_rates: dropout after the pool and after the hidden layer.

  Example:
    >>> model = DigitsCNN(num_classes=10)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 28, 28)))
    >>> logits = model.apply(variables, jnp.zeros((64, 28, 28)))  # [64, 10]
  """
  input_kind: ClassVar[str] = "image"

  num_classes: int
  features: Sequence[int] = (32, 64)
  hidden: int = 128
  dropout_rates: Sequence[float] = (0.25, 0.5)

  def __post_init__(self):
    check_positive(num_classes=self.num_classes, hidden=self.hidden)
    checks.positive_integers("features", self.features)
    if len(self.dropout_rates) != 2 or not all(0.0 <= r < 1.0 for r in self.dropout_rates):
      raise ValueError(f"dropout_rates must be two rates in [0, 1), got {self.dropout_rates!r}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Maps images `[batch, height, width]` to logits `[batch, num_classes]`."""
    # Each VALID 3x3 conv drops 2 pixels per axis and the pool of 2 needs 2 left.
    check_min_size(x, 2 * len(self.features) + 2, "DigitsCNN")
    x = x[..., None]
    for features in self.features:
      x = nn.relu(nn.Conv(features, (3, 3), padding="VALID")(x))
    x = max_pool(x, (2, 2))
    x = nn.Dropout(self.dropout_rates[0], deterministic=not train)(x)
    x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    x = nn.Dropout(self.dropout_rates[1], deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
