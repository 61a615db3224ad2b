"""Figures (matplotlib, headless) that experiments write into a workdir."""

import os
from typing import Any, Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # Experiments run on servers without a display.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


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


def plot_heatmap(matrix: np.ndarray, row_names: Sequence[str], column_names: Sequence[str],
                 path: str, *, title: str, xlabel: str, ylabel: str, vmin: float = 0.0,
                 vmax: float = 1.0) -> None:
  """Saves a heat map with each value printed in its cell (NaN cells are left blank)."""
  matrix = np.asarray(matrix, np.float64)
  figure, axes = plt.subplots(figsize=(1.1 * len(column_names) + 2.5,
                                       0.8 * len(row_names) + 2.0))
  image = axes.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=vmin, vmax=vmax)
  axes.set_xticks(np.arange(len(column_names)), column_names, rotation=45, ha="right")
  axes.set_yticks(np.arange(len(row_names)), row_names)
  for (row, col), value in np.ndenumerate(matrix):
    if np.isfinite(value):
      axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="black" if value > (vmin + vmax) / 2 else "white")
  axes.set_xlabel(xlabel)
  axes.set_ylabel(ylabel)
  axes.set_title(title)
  figure.colorbar(image, ax=axes)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


LEGEND_INSIDE = 6  # lines whose legend fits inside a plot_curves figure


def plot_curves(curves: Mapping[str, Tuple[Sequence[float], Sequence[float]]], path: str, *,
                title: str, xlabel: str, ylabel: str, invert_x: bool = False,
                log_x: bool = False, styles: Optional[Mapping[str, Mapping[str, Any]]] = None
                ) -> None:
  """Saves one line per name in `curves` (name -> (xs, ys)) with markers on the points;
  `styles` maps a name to its line's matplotlib keywords (e.g. `color`, `linestyle`). More than
  `LEGEND_INSIDE` lines get their legend beside the axes, where it hides none of them."""
  many = len(curves) > LEGEND_INSIDE
  figure, axes = plt.subplots(figsize=(9, 4) if many else (6, 4))
  for name, (xs, ys) in curves.items():
    axes.plot(xs, ys, **{"marker": "o", "label": name, **(styles or {}).get(name, {})})
  if invert_x:
    axes.invert_xaxis()
  if log_x:
    axes.set_xscale("log")
  axes.set_xlabel(xlabel)
  axes.set_ylabel(ylabel)
  axes.set_title(title)
  axes.grid(alpha=0.3)
  if many:
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
  else:
    axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def plot_spectrograms(images: Sequence[Sequence[np.ndarray]], path: str, *,
                      row_titles: Sequence[str], column_titles: Sequence[str],
                      title: str, xlabel: str = "frame", ylabel: str = "mel band",
                      cmap: str = "magma") -> None:
  """Saves a grid of `[frames, bins]` spectrograms (time across, frequency up), one colour bar
  each; `images[row][column]`. Any time-major matrix works: a `[frames, classes]` piano roll, or
  attention weights `[frame, attended frame]` (with their own axis labels)."""
  rows, columns = len(images), len(column_titles)
  figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
  for row, cells in enumerate(images):
    for column, image in enumerate(cells):
      axes_ = axes[row, column]
      shown = axes_.imshow(np.asarray(image).T, origin="lower", aspect="auto", cmap=cmap)
      figure.colorbar(shown, ax=axes_)
      axes_.set_title(f"{row_titles[row]}: {column_titles[column]}", fontsize=9)
      axes_.set_xlabel(xlabel)
      axes_.set_ylabel(ylabel)
  figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)
