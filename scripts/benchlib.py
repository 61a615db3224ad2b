"""Timing helpers shared by the benchmark scripts: wall time of compiled calls, throughput lines."""

import time
from typing import Callable, Optional, Sequence

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


def batching_ceiling(loss_fn: Callable, variables, x, y,
                     sizes: Sequence[int] = (1, 4, 16, 64, 256)) -> float:
  """Per-example time of the model's batched input gradient at each batch size in `sizes`.

  Every gradient attack and attribution is a sequence of such gradients, so the best ratio
  `time at batch 1 / time at batch b` bounds what batching any of them can gain over a loop of
  jitted one-example calls on this device, whatever the implementation; a loop with host work
  between calls (the IG loop's accumulation) is slower by that work. Prints one line per size.

  Args:
    loss_fn: per-example `(variables, x, y) -> scalar`.
    variables: the model variables.
    x, y: at least `max(sizes)` inputs and labels.
    sizes: the batch sizes to time.

  Returns:
    The ceiling: time per example at batch 1 over the best time per example.
  """
  grad = jax.jit(jax.vmap(jax.grad(loss_fn, argnums=1), in_axes=(None, 0, 0)))
  per_example = {}
  for size in sizes:
    repeats = max(1, 64 // size)  # At least 64 examples per timing: steadier small batches.
    calls = lambda: [grad(variables, x[:size], y[:size]) for _ in range(repeats)]
    per_example[size] = seconds_per_call(calls) / (repeats * size)
    print(f"  input gradient at batch {size:4d}: {per_example[size] * 1e6:9.1f} us/example",
          flush=True)
  ceiling = per_example[sizes[0]] / min(per_example.values())
  print(f"  => batching can gain at most x{ceiling:.1f} over jitted one-example calls here")
  return ceiling
