"""Forward and input-gradient time of `nn.max_pool` vs the reshape-and-max `models.max_pool`.

Input gradients (attacks, attributions) go through every pool's backward pass; on XLA:CPU the
`reduce_window` backward of `nn.max_pool` is far slower than its forward, while the backward of
a reshape-and-max is an elementwise select. Run: `.venv/bin/python scripts/bench_pooling.py`.
"""

import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import report, seconds_per_call  # noqa: E402

from soundjax.models import max_pool  # noqa: E402

SHAPE = (64, 64, 64, 32)  # [batch, frames, mels, channels]: a VGG block's output, moderate size
WINDOW = (2, 2)


def main() -> None:
  pools = {
      "nn.max_pool": lambda x: nn.max_pool(x, WINDOW, strides=WINDOW),
      "reshape-and-max": lambda x: max_pool(x, WINDOW),
  }
  x = jax.random.normal(jax.random.key(0), SHAPE)
  print(f"device: {jax.devices()[0].device_kind}, input {SHAPE}, window {WINDOW}")
  reference = {}
  for name, pool in pools.items():
    loss = lambda x, pool=pool: jnp.sum(pool(x) ** 2)
    for kind, fn in (("forward", jax.jit(pool)), ("forward+input grad", jax.jit(jax.grad(loss)))):
      seconds = seconds_per_call(fn, x)
      reference.setdefault(kind, seconds)
      report(f"{name} {kind}", SHAPE[0], seconds, reference[kind])


if __name__ == "__main__":
  main()
