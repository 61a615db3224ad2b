"""Classification scores from integer labels and predictions (host-side numpy)."""

from typing import Optional

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


def softmax(logits: np.ndarray) -> np.ndarray:
  """Class probabilities from `[..., classes]` logits (numerically stable)."""
  logits = np.asarray(logits, np.float64)
  shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
  return shifted / np.sum(shifted, axis=-1, keepdims=True)


def class_probability(probs: np.ndarray, classes: np.ndarray) -> np.ndarray:
  """`probs[i, classes[i]]`: each example's probability of its given class."""
  probs = np.asarray(probs)
  return probs[np.arange(len(probs)), np.asarray(classes)]


def untargeted_success(probs: np.ndarray, labels: np.ndarray,
                       threshold: Optional[float] = None) -> np.ndarray:
  """Whether each adversarial example fools the model away from its true label.

  Args:
    probs: `[examples, classes]` probabilities of the adversarial examples.
    labels: `[examples]` true labels.
    threshold: if given, also require `p(label) < threshold` (the audio attacks paper used
      1 / num_classes for its untargeted C&W).

  Returns:
    `[examples]` booleans: argmax != label (and p(label) below the threshold).
  """
  success = np.argmax(probs, axis=-1) != np.asarray(labels)
  if threshold is not None:
    success &= class_probability(probs, labels) < threshold
  return success


def targeted_success(probs: np.ndarray, targets: np.ndarray,
                     threshold: Optional[float] = None) -> np.ndarray:
  """Whether each adversarial example is classified as its target.

  Args:
    probs: `[examples, classes]` probabilities of the adversarial examples.
    targets: `[examples]` target classes.
    threshold: if given, also require `p(target) >= threshold` (the paper used 0.975).

  Returns:
    `[examples]` booleans: argmax == target (and p(target) at least the threshold).
  """
  success = np.argmax(probs, axis=-1) == np.asarray(targets)
  if threshold is not None:
    success &= class_probability(probs, targets) >= threshold
  return success
