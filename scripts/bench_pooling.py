"""Forward and input-gradient time of the reshape-and-max `models.max_pool` against `nn.max_pool`.

Input gradients (attacks, attributions) go through every pool's backward pass; on XLA:CPU the
`reduce_window` backward of `nn.max_pool` is far slower than its forward, while the backward of
a reshape-and-max is an elementwise select. Run: `.venv/bin/python scripts/bench_pooling.py
[--tiny]` (seconds).
"""

import dataclasses
import sys

import benchlib
import flax.linen as nn
import jax
import jax.numpy as jnp

from soundjax.models import max_pool

# [batch, frames, mels, channels]: a VGG block's output, moderate size (no published size).
SHAPES = {"tiny": (4, 8, 8, 4), "default": (64, 64, 64, 32), "full": (64, 64, 64, 32)}
WINDOW = (2, 2)
POOLS = {"nn.max_pool": lambda x: nn.max_pool(x, WINDOW, strides=WINDOW),
         "reshape-and-max": lambda x: max_pool(x, WINDOW)}
KINDS = {"forward": lambda pool: pool,
         "input-gradient": lambda pool: jax.grad(lambda x: jnp.sum(pool(x) ** 2))}


def groups(size: str, args) -> dict:
  del args
  shape = SHAPES[size]
  x = jax.random.normal(jax.random.key(0), shape)

  def group(kind: str):
    reference, ours = (benchlib.Workload(name, jax.jit(KINDS[kind](pool)), (x,), shape[0])
                       for name, pool in POOLS.items())
    ours = dataclasses.replace(ours, name=f"pooling/{kind} {ours.name} {list(shape)}")
    return benchlib.compare([ours], reference, repeats=2 * benchlib.REPEATS[size])

  return {kind: lambda kind=kind: group(kind) for kind in KINDS}


if __name__ == "__main__":
  benchlib.run_suite("pooling", groups, sys.argv, __doc__.splitlines()[0])
