"""Classification scores from integer labels and predictions (host-side numpy)."""

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts `[true class, predicted class]`."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
  return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
  """Recall of each class from a confusion matrix (NaN for a class with no examples)."""
  totals = matrix.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)
