"""Frame-wise detection scores against scikit-learn and the published `eval.py` rules."""

import hypothesis
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
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


def _median_reference(song, size):
  """Running median by hand: the window of frame i spans i - size // 2 .. i + (size - 1) // 2,
  edges repeat the end values, and an even window takes the upper of its two middle values
  (scipy.ndimage's rank size // 2, not their mean)."""
  song = np.asarray(song, np.float64)
  padded = np.pad(song, (size // 2, (size - 1) // 2), mode="edge")
  windows = np.stack([padded[i:i + size] for i in range(song.size)])
  return np.sort(windows, axis=1)[:, size // 2]


def test_median_filter_on_hand_computed_cases():
  x = np.array([5.0, 1.0, 4.0, 2.0, 8.0, 3.0, 9.0, 0.0])
  expected = {
      1: x,
      2: [5, 5, 4, 4, 8, 8, 9, 9],  # windows [x[i - 1], x[i]]: the larger one
      3: [5, 4, 2, 4, 3, 8, 3, 0],
      4: [5, 5, 4, 4, 4, 8, 8, 3],  # windows x[i - 2 .. i + 1], third smallest
      5: [5, 4, 4, 3, 4, 3, 3, 0],
  }
  for size, want in expected.items():
    np.testing.assert_array_equal(frame_detection.median_filter([x], size)[0], want, str(size))
    np.testing.assert_array_equal(_median_reference(x, size), want, str(size))
  # Longer than the song: the end values fill the window.
  np.testing.assert_array_equal(frame_detection.median_filter([[3.0, 1.0]], 5)[0], [3, 1])
  np.testing.assert_array_equal(frame_detection.median_filter([[9.0, 2.0, 1.0, 5.0]], 6)[0],
                                [9, 9, 5, 5])


_SONG = hnp.arrays(np.float64, st.integers(1, 30), elements=st.integers(0, 6).map(float) |
                   st.floats(0.0, 1.0, allow_subnormal=False))


@hypothesis.given(songs=st.lists(_SONG, min_size=1, max_size=3), size=st.integers(1, 12))
@hypothesis.settings(max_examples=60, deadline=None)
def test_median_filter_equals_sorted_edge_padded_windows(songs, size):
  filtered = frame_detection.median_filter(songs, size)
  assert len(filtered) == len(songs)
  for song, got in zip(songs, filtered):  # Each song on its own: no window crosses songs.
    np.testing.assert_array_equal(got, _median_reference(song, size))


def test_median_filter_is_per_song_at_the_published_size():
  songs = [np.array([0.0, 1.0, 0.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0])]
  filtered = frame_detection.median_filter(songs, size=3)
  np.testing.assert_array_equal(filtered[0], [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(filtered[1], [1, 1, 0])  # Not mixed with the first song.
  assert frame_detection.MEDIAN_FRAMES == 56  # 0.8 s at 70 frames/s, as published
  long = np.random.default_rng(0).random(200)
  np.testing.assert_array_equal(frame_detection.median_filter([long])[0],
                                _median_reference(long, 56))
  with pytest.raises(ValueError, match="size"):
    frame_detection.median_filter(songs, size=0)


def test_tune_threshold_maximises_accuracy_on_the_grid():
  labels = np.array([0, 0, 0, 1, 1, 1])
  scores = np.array([0.1, 0.2, 0.62, 0.6, 0.8, 0.9])
  # Every threshold in [0.2, 0.6) misclassifies only the 0.62 negative (accuracy 5/6); the
  # first of them on the grid is 0.2 (0.2 itself is not above 0.2).
  assert frame_detection.tune_threshold(scores, labels) == 0.2
  result = frame_detection.evaluate(scores, labels, 0.2)
  assert result["accuracy"] == pytest.approx(5 / 6)
  # 0.7 and 0.3 tie at 5/6 and 0.61 scores 4/6: the first best in grid order wins.
  assert frame_detection.tune_threshold(scores, labels, np.array([0.61, 0.7, 0.3])) == 0.7


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="one length"):
    frame_detection.evaluate(np.zeros(3), np.zeros(2), 0.5)
  with pytest.raises(ValueError, match="0 or 1"):
    frame_detection.auroc(np.zeros(2), np.array([0, 2]))
  assert np.isnan(frame_detection.auroc(np.zeros(3), np.ones(3)))
