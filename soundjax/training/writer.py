"""Training metrics to `metrics.jsonl` and TensorBoard event files (tensorboardX, no TensorFlow).

A resumed run first drops what the killed run logged after its last checkpoint, so the log reads
as if the run had never stopped. In a multi-process run only process 0 writes (every process logs
the same figures).
"""

import json
import os
from typing import Dict

import jax
import tensorboardX


class MetricWriter:
  """Appends `{"step": s, "split": name, **scalars}` lines and mirrors them to TensorBoard."""

  def __init__(self, workdir: str, *, start_step: int):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._board = None  # None: another process writes.
    if jax.process_index() == 0:
      self._drop_after(start_step)
      self._board = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"),
                                               purge_step=start_step + 1 if start_step else None)

  def _drop_after(self, step: int) -> None:
    kept = [row for row in _rows(self.path) if row["step"] <= step]
    with open(self.path, "w") as file:
      file.writelines(json.dumps(row) + "\n" for row in kept)

  def has(self, step: int, split: str) -> bool:
    """Whether a row for `split` at `step` is logged already."""
    return any(row["step"] == step and row["split"] == split for row in _rows(self.path))

  def write(self, step: int, split: str, scalars: Dict[str, float]) -> None:
    """Logs one row of scalars for `split` ("train" or "test") at `step`."""
    if self._board is None:
      return
    row = {"step": int(step), "split": split, **{k: float(v) for k, v in scalars.items()}}
    with open(self.path, "a") as file:
      file.write(json.dumps(row) + "\n")
    for name, value in scalars.items():
      self._board.add_scalar(f"{split}/{name}", float(value), int(step))

  def close(self) -> None:
    if self._board is not None:
      self._board.close()


def _rows(path: str):
  if not os.path.exists(path):
    return []
  with open(path) as file:
    return [json.loads(line) for line in file if line.strip()]


def read_metrics(workdir: str):
  """All rows of a workdir's `metrics.jsonl`, in order."""
  return _rows(os.path.join(workdir, "metrics.jsonl"))
