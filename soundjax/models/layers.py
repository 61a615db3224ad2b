"""Parts shared by the model families: a fast max-pool, conv units and the VGG-style conv stack.

All modules take channels-last inputs `[batch, *spatial, channels]`.

Why a reshape-and-max pool: on XLA:CPU the backward pass of `nn.max_pool` (`reduce_window` ->
`select_and_scatter_add`) is the bottleneck of input gradients (391 ms backward vs 7.5 ms forward
on 256x64x64x32), while the backward of `jnp.max` over a reshaped axis is an ordinary
elementwise select. Attacks and attributions spend their time in input gradients, so every
model here pools with `max_pool` below (`scripts/bench_pooling.py` measures both).
"""

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from soundjax import checks

# Keras' BatchNormalization epsilon: the Iqbal and Cochlear.ai victims were trained in Keras.
KERAS_BN_EPSILON = 1e-3
# Keras' and Flax's default. Running statistics start at mean 0 and variance 1 and keep
# momentum**steps of that start: short runs (a few hundred steps) want a lower momentum such as
# 0.9, or they are evaluated with statistics far from their activations'.
BN_MOMENTUM = 0.99


def batch_norm(train: bool, momentum: float = BN_MOMENTUM) -> nn.BatchNorm:
  """The models' BatchNorm: batch statistics when training, running averages otherwise."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=KERAS_BN_EPSILON)


def check_momentum(momentum: float) -> None:
  """Raises ValueError unless `0 <= momentum < 1` (1 would never update the statistics)."""
  checks.in_interval("bn_momentum", momentum, 0.0, 1.0, closed_high=False)


def pool_window(spatial_shape: Sequence[int], window: Sequence[int]) -> tuple[int, ...]:
  """Shrinks a pooling window to 1 along every axis shorter than it, so pooling stops at size 1.

  Args:
    spatial_shape: the sizes of the pooled axes.
    window: the wanted window per axis.

  Returns:
    The window to use: `window[i]` where `spatial_shape[i] >= window[i]`, else 1.
  """
  if len(spatial_shape) != len(window):
    raise ValueError(f"window {tuple(window)} needs one entry per spatial axis of "
                     f"{tuple(spatial_shape)}")
  return tuple(w if size >= w else 1 for size, w in zip(spatial_shape, window))


def max_pool(x: jax.Array, window: Sequence[int], padding: str = "VALID") -> jax.Array:
  """Non-overlapping max-pool (stride = window) as a reshape and a max.

  The forward result equals `nn.max_pool(x, window, strides=window, padding=padding)`.
  "VALID" crops the trailing remainder of each axis; "SAME" pads it with -inf the way
  `lax.padtype_to_pads` does (extra element after). The gradient flows to the first maximum of
  each window (see `_window_max`).

  Args:
    x: `[batch, *spatial, channels]`.
    window: window (and stride) per spatial axis, each >= 1.
    padding: "VALID" or "SAME".

  Returns:
    `[batch, *pooled, channels]`.
  """
  spatial = x.shape[1:-1]
  if len(window) != len(spatial):
    raise ValueError(f"window {tuple(window)} needs one entry per spatial axis of shape {x.shape}")
  if any(w < 1 for w in window):
    raise ValueError(f"window entries must be >= 1, got {tuple(window)}")
  if padding == "VALID":
    if any(size < w for size, w in zip(spatial, window)):
      raise ValueError(f"window {tuple(window)} is larger than the spatial shape {spatial}")
    out = tuple(size // w for size, w in zip(spatial, window))
    x = x[(slice(None),) + tuple(slice(0, o * w) for o, w in zip(out, window))]
  elif padding == "SAME":
    out = tuple(-(-size // w) for size, w in zip(spatial, window))
    extra = tuple(o * w - size for o, w, size in zip(out, window, spatial))
    pads = [(0, 0)] + [(e // 2, e - e // 2) for e in extra] + [(0, 0)]
    x = jnp.pad(x, pads, constant_values=-jnp.inf)
  else:
    raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
  split = [x.shape[0]]
  for o, w in zip(out, window):
    split += [o, w]
  x = x.reshape(split + [x.shape[-1]])
  # [batch, o1, w1, o2, w2, ..., channels] -> [batch, o1, o2, ..., channels, w1 * w2 * ...]
  n = len(window)
  order = [0] + [1 + 2 * i for i in range(n)] + [2 * n + 1] + [2 + 2 * i for i in range(n)]
  return _window_max(jnp.transpose(x, order).reshape((x.shape[0],) + out + (x.shape[-1], -1)))


@jax.custom_jvp
def _window_max(x: jax.Array) -> jax.Array:
  """Max over the last axis whose derivative is a one-hot of the first maximum.

  `jnp.max`'s derivative divides by the number of elements equal to the max; when XLA fuses the
  backward pass and recomputes the pool input slightly differently, that count can be 0 and the
  gradient NaN (seen on DenseNet-SE under jit). `argmax` always picks exactly one element.
  """
  return jnp.max(x, axis=-1)


@_window_max.defjvp
def _window_max_jvp(primals, tangents):
  (x,), (tangent,) = primals, tangents
  first = jax.nn.one_hot(jnp.argmax(x, axis=-1), x.shape[-1], dtype=jnp.bool_)
  return jnp.max(x, axis=-1), jnp.sum(jnp.where(first, tangent, 0), axis=-1)


class ConvBNReLU(nn.Module):
  """A SAME convolution, BatchNorm and ReLU.

  Attributes:
    features: output channels.
    kernel_size: kernel per spatial axis (its length sets 1-D or 2-D).
    strides: stride per spatial axis (an int applies to all).
    relu_before_norm: Conv -> ReLU -> BN, the order of Iqbal et al.'s Keras code
      (`Conv2D(activation='relu')` then `BatchNormalization`); otherwise Conv -> BN -> ReLU.
    bn_momentum: momentum of the BatchNorm running statistics.
  """
  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: int | Sequence[int] = 1
  relu_before_norm: bool = False
  bn_momentum: float = BN_MOMENTUM

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nn.Conv(self.features, tuple(self.kernel_size), strides=self.strides, padding="SAME")(x)
    norm = batch_norm(train, self.bn_momentum)
    return norm(nn.relu(x)) if self.relu_before_norm else nn.relu(norm(x))


# The conv unit of Iqbal et al.'s VGG13 and CRNN.
iqbal_conv = functools.partial(ConvBNReLU, kernel_size=(3, 3), relu_before_norm=True)


class ConvStack(nn.Module):
  """VGG-style blocks: two conv units then a 2x2 max-pool, per entry of `channels`.

  Pooling stops along an axis once it is shorter than 2 (see `pool_window`), so inputs of any
  size >= 1 work; with five blocks an axis of at least 32 is pooled by every block.

  Attributes:
    channels: output channels of each block.
    unit: `unit(features, bn_momentum=...)` builds a conv module called as `unit(x, train)`
      (Iqbal's conv unit by default; the gated CNN passes a gated one).
    bn_momentum: momentum of the units' BatchNorm running statistics.
  """
  channels: Sequence[int]
  unit: Callable[..., nn.Module] = iqbal_conv
  bn_momentum: float = BN_MOMENTUM

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for features in self.channels:
      x = self.unit(features, bn_momentum=self.bn_momentum)(x, train)
      x = self.unit(features, bn_momentum=self.bn_momentum)(x, train)
      x = max_pool(x, pool_window(x.shape[1:-1], (2, 2)))
    return x


def check_positive(**values: int) -> None:
  """Raises ValueError naming the first argument that is not an integer >= 1."""
  for name, value in values.items():
    checks.integer(name, value)


def check_min_size(x: jax.Array, minimum: int, model: str) -> None:
  """Raises ValueError when an axis of `x[batch, *spatial]` is shorter than `minimum`."""
  if any(size < minimum for size in x.shape[1:]):
    raise ValueError(f"{model} needs every input axis >= {minimum}, got input shape {x.shape}")
