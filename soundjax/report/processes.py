"""Which JAX process writes an experiment's files: process 0 only.

In a multi-process run (`parallel.initialize`) every process runs the experiment and holds the
same results (evaluations are gathered to all of them), so one process writes them. Training's
`MetricWriter` follows the same rule; checkpoints are orbax's, which coordinates the processes.
"""

import functools
from typing import Callable, TypeVar

from jax import process_index

Writer = TypeVar("Writer", bound=Callable)


def on_process_zero(write: Writer) -> Writer:
  """Decorates a function that only writes files: it runs on JAX process 0, else returns None.

  Example:
    >>> @on_process_zero
    ... def write(workdir, results): ...
  """

  @functools.wraps(write)
  def written_by_process_zero(*args, **kwargs):
    return write(*args, **kwargs) if process_index() == 0 else None

  written_by_process_zero.process_zero_only = True
  return written_by_process_zero
