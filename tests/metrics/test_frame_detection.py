"""Frame-wise detection scores against scikit-learn and the published `eval.py` rules."""

import hypothesis
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.ndimage
from hypothesis import strategies as st
from sklearn import metrics as sk_metrics

from soundjax.metrics import frame_detection

_LABELS = hnp.arrays(np.int8, st.integers(2, 40), elements=st.integers(0, 1))


@hypothesis.given(labels=_LABELS, seed=st.integers(0, 2**16), coarse=st.booleans())
@hypothesis.settings(max_examples=20, deadline=None)
def test_auroc_equals_scikit_learn(labels, seed, coarse):
  hypothesis.assume(0 < labels.sum() < labels.size)
  scores = np.random.default_rng(seed).random(labels.size)
  if coarse:  # Many ties.
    scores = np.round(scores, 1)
  np.testing.assert_allclose(frame_detection.auroc(scores, labels),
                             sk_metrics.roc_auc_score(labels, scores), rtol=1e-12)


@hypothesis.given(labels=_LABELS, seed=st.integers(0, 2**16),
                  threshold=st.sampled_from([0.0, 0.3, 0.5, 0.99]))
@hypothesis.settings(max_examples=20, deadline=None)
def test_scores_at_a_threshold_equal_scikit_learn(labels, seed, threshold):
  scores = np.random.default_rng(seed).random(labels.size)
  predicted = scores > threshold
  result = frame_detection.evaluate(scores, labels, threshold)
  kwargs = dict(y_true=labels, y_pred=predicted, zero_division=0)
  assert result["f1"] == pytest.approx(sk_metrics.f1_score(**kwargs))
  assert result["precision"] == pytest.approx(sk_metrics.precision_score(**kwargs))
  assert result["recall"] == pytest.approx(sk_metrics.recall_score(**kwargs))
  assert result["specificity"] == pytest.approx(
      sk_metrics.recall_score(1 - labels, ~predicted, zero_division=0))
  assert result["error"] == pytest.approx(1 - sk_metrics.accuracy_score(labels, predicted))


def test_median_filter_is_per_song_with_nearest_edges():
  songs = [np.array([0.0, 1.0, 0.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0])]
  filtered = frame_detection.median_filter(songs, size=3)
  np.testing.assert_array_equal(filtered[0], [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(filtered[1], [1, 1, 0])  # Not mixed with the first song.
  np.testing.assert_array_equal(frame_detection.median_filter(songs, size=1)[0], songs[0])
  long = np.random.default_rng(0).random(200)
  np.testing.assert_array_equal(frame_detection.median_filter([long])[0],
                                scipy.ndimage.median_filter(long, 56, mode="nearest"))
  with pytest.raises(ValueError, match="size"):
    frame_detection.median_filter(songs, size=0)


def test_tune_threshold_maximises_accuracy_on_the_grid():
  labels = np.array([0, 0, 0, 1, 1, 1])
  scores = np.array([0.1, 0.2, 0.62, 0.6, 0.8, 0.9])
  threshold = frame_detection.tune_threshold(scores, labels)
  assert threshold in frame_detection.THRESHOLDS
  best = max(np.mean((scores > t) == labels) for t in frame_detection.THRESHOLDS)
  assert np.mean((scores > threshold) == labels) == best
  assert 0.2 <= threshold < 0.6  # First of the tied best thresholds.


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="one length"):
    frame_detection.evaluate(np.zeros(3), np.zeros(2), 0.5)
  with pytest.raises(ValueError, match="0 or 1"):
    frame_detection.auroc(np.zeros(2), np.array([0, 2]))
  assert np.isnan(frame_detection.auroc(np.zeros(3), np.ones(3)))
