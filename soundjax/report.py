"""Figures (matplotlib, headless) and Markdown pieces that experiments write into a workdir."""

import json
import os
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # Experiments run on servers without a display.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def write_json(path: str, payload: Any) -> None:
  """Writes `payload` as indented JSON (numpy scalars and arrays become plain numbers/lists)."""
  with open(path, "w") as file:
    json.dump(payload, file, indent=2, default=lambda value: np.asarray(value).tolist())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A GitHub-flavoured Markdown table; floats are printed with 3 decimals."""
  def cell(value):
    return f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
  return "\n".join(lines)


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str,
                          title: str = "Confusion matrix") -> None:
  """Saves a row-normalised confusion matrix heat map with counts in the cells."""
  rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  size = max(4.0, 0.45 * len(class_names) + 2)
  figure, axes = plt.subplots(figsize=(size, size))
  axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
  ticks = np.arange(len(class_names))
  axes.set_xticks(ticks, class_names, rotation=90)
  axes.set_yticks(ticks, class_names)
  axes.set_xlabel("predicted")
  axes.set_ylabel("true")
  for (row, col), count in np.ndenumerate(matrix):
    if count:
      axes.text(col, row, str(count), ha="center", va="center", fontsize=7,
                color="white" if rates[row, col] > 0.5 else "black")
  axes.set_title(title)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def ensure_dir(path: str) -> str:
  """Creates `path` if needed and returns it."""
  os.makedirs(path, exist_ok=True)
  return path
