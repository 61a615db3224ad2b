"""Frame-wise binary detection scores (singing voice): smoothing, threshold tuning, F1, AUROC.

Follows Schlüter's `eval.py` as used by "Anomalous behaviour in loss-gradient based
interpretability methods" (`VinodS7/investigate-gradients` `src/eval.py`): network outputs are
median-filtered per song over 56 frames (`scipy.ndimage.median_filter`, mode "nearest"), the
threshold maximising accuracy on the validation set is picked from a fixed grid, and the test
songs are scored as one long file (counts summed over songs). AUROC here is the exact area
(Mann-Whitney, ties count one half; equal to scikit-learn's `roc_auc_score`), not the published
trapezoid over the threshold grid, which under-resolves curves of very confident models.
Host-side numpy: these run once per occlusion cell on predictions already computed.
"""

from typing import Dict, Sequence

import numpy as np
import scipy.ndimage
import scipy.stats

from soundjax import checks

# The published threshold grid: 1e-5, 1e-4, 1e-3, 0.01 ... 0.99, 1 - 1e-3, 1 - 1e-4, 1 - 1e-5.
THRESHOLDS = np.concatenate([[1e-5, 1e-4, 1e-3], np.arange(1, 100) / 100.0,
                             [1 - 1e-3, 1 - 1e-4, 1 - 1e-5]])
# 56 frames at 70 frames/s = 0.8 s, the published smoothing.
MEDIAN_FRAMES = 56


def median_filter(songs: Sequence[np.ndarray], size: int = MEDIAN_FRAMES) -> list:
  """Median-filters each song's frame predictions separately (edges repeat the end values).

  Args:
    songs: one 1-D array of frame scores per song, in time order.
    size: filter length in frames; 1 leaves the scores unchanged.

  Returns:
    The filtered scores, one array per song.
  """
  checks.integer("size", size)
  return [scipy.ndimage.median_filter(np.asarray(song, np.float64), size, mode="nearest")
          for song in songs]


def _check_pair(scores: np.ndarray, labels: np.ndarray) -> tuple:
  scores, labels = np.ravel(scores).astype(np.float64), np.ravel(labels)
  if scores.shape != labels.shape or scores.size == 0:
    raise ValueError(f"scores and labels must be non-empty and of one length, got {scores.shape} "
                     f"and {labels.shape}")
  if not np.all(np.isin(labels, (0, 1))):
    raise ValueError("labels must be 0 or 1")
  return scores, labels.astype(bool)


def counts(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> Dict[str, np.ndarray]:
  """True/false positives/negatives for `scores > threshold`, one entry per threshold."""
  scores, labels = _check_pair(scores, labels)
  thresholds = np.atleast_1d(np.asarray(thresholds, np.float64))
  positive = np.sort(scores[labels])
  negative = np.sort(scores[~labels])
  # Frames strictly above each threshold, by binary search on the sorted scores.
  tp = positive.size - np.searchsorted(positive, thresholds, side="right")
  fp = negative.size - np.searchsorted(negative, thresholds, side="right")
  return {"tp": tp, "fp": fp, "tn": negative.size - fp, "fn": positive.size - tp}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator, 0 where both are 0 (the published `savediv`)."""
  numerator = np.asarray(numerator, np.float64)
  return numerator / np.where(denominator == 0, 1, denominator)


def scores_from_counts(tp, fp, tn, fn) -> Dict[str, np.ndarray]:
  """Accuracy, error, precision, recall, specificity and F1 from counts."""
  precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
  accuracy = _ratio(tp + tn, tp + fp + tn + fn)
  return {"accuracy": accuracy, "error": 1.0 - accuracy, "precision": precision, "recall": recall,
          "specificity": _ratio(tn, tn + fp),
          "f1": _ratio(2 * precision * recall, precision + recall)}


def tune_threshold(scores: np.ndarray, labels: np.ndarray,
                   thresholds: np.ndarray = THRESHOLDS) -> float:
  """The threshold of `thresholds` with the highest accuracy (the first among ties)."""
  accuracy = scores_from_counts(**counts(scores, labels, thresholds))["accuracy"]
  return float(np.asarray(thresholds)[np.argmax(accuracy)])


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
  """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

  Returns NaN when only one class is present (the area is undefined).
  """
  scores, labels = _check_pair(scores, labels)
  num_positive, num_negative = int(labels.sum()), int((~labels).sum())
  if num_positive == 0 or num_negative == 0:
    return float("nan")
  ranks = scipy.stats.rankdata(scores)  # Average ranks give ties one half.
  rank_sum = ranks[labels].sum() - num_positive * (num_positive + 1) / 2.0
  return float(rank_sum / (num_positive * num_negative))


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float) -> Dict[str, float]:
  """Detection scores at `threshold` plus AUROC, all frames counted as one long file.

  Args:
    scores: frame scores (probabilities), already median-filtered if wanted.
    labels: frame labels in {0, 1}.
    threshold: a frame is positive where `score > threshold`.

  Returns:
    "accuracy", "error", "precision", "recall", "specificity", "f1" and "auroc".

  Example:
    >>> threshold = tune_threshold(np.concatenate(median_filter(valid_scores)), valid_labels)
    >>> evaluate(np.concatenate(median_filter(test_scores)), test_labels, threshold)["f1"]
  """
  result = scores_from_counts(**counts(scores, labels, np.asarray([threshold])))
  result = {name: float(value[0]) for name, value in result.items()}
  result["auroc"] = auroc(scores, labels)
  return result
