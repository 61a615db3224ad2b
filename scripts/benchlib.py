"""Timing helpers shared by the benchmark scripts: wall time of compiled calls, throughput lines."""

import time
from typing import Callable, Optional

import jax


def seconds_per_call(fn: Callable, *args, repeats: int = 3) -> float:
  """Best wall time of `fn(*args)` over `repeats` calls, after one warm-up call that compiles."""
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - start)
  return best


def report(name: str, examples: int, seconds: float, reference: Optional[float] = None) -> str:
  """Prints and returns one line: throughput in examples/s and the speed-up over `reference` s."""
  line = f"{name:<48s} {examples / seconds:12.1f} examples/s  ({seconds * 1e3:9.1f} ms)"
  if reference is not None:
    line += f"  x{reference / seconds:.1f} vs reference"
  print(line, flush=True)
  return line
