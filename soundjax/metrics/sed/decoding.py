"""Decoding frame-wise activity into events, as the SED papers' code (via dcase_util) does."""

from typing import List, Sequence

import numpy as np

from soundjax import checks
from soundjax.types import Event


def frames_to_events(activity: np.ndarray, *, hop_seconds: float, labels: Sequence[str],
                     threshold: float = 0.5, min_duration: float = 0.0,
                     min_gap: float = 0.0) -> List[Event]:
  """Decodes a [frames, classes] probability or activity matrix into `(onset, offset, label)`.

  A class is active in frames whose value is `>= threshold` (the SED papers' `prob_to_onehot`
  rule); each run of active frames `[start, stop)` becomes the event `(start * hop_seconds, stop *
  hop_seconds, label)`, as dcase_util's `DecisionEncoder.find_contiguous_regions` gives. Then,
  per class and as dcase_util's `MetaDataContainer.process_events` does, events shorter than
  `min_duration` are dropped and events separated by gaps `<= min_gap` are merged.

  Args:
    activity: [frames, classes] scores (or 0/1 or bools).
    hop_seconds: seconds between frame starts (0.02 for 50 frames/s).
    labels: one label per class column.
    threshold: activity threshold.
    min_duration: shortest event kept, seconds (0 keeps all).
    min_gap: gaps up to this long, seconds, between same-class events are closed (0 closes none).

  Returns:
    The events sorted by onset, then class column.

  Example:
    >>> frames_to_events(np.array([[0.1], [0.9], [0.7], [0.2]]), hop_seconds=0.5, labels=["dog"])
    [(0.5, 1.5, 'dog')]
  """
  activity = np.asarray(activity)
  labels = list(labels)
  if activity.ndim != 2 or activity.shape[1] != len(labels):
    raise ValueError(f"activity must be [frames, {len(labels)} classes], got {activity.shape}")
  if np.isnan(activity.astype(np.float64)).any():
    raise ValueError("activity must not contain NaN")
  hop_seconds = checks.positive("hop_seconds", hop_seconds)
  min_duration = checks.nonnegative("min_duration", min_duration)
  min_gap = checks.nonnegative("min_gap", min_gap)
  checks.finite("threshold", threshold)
  active = np.pad(activity >= threshold, ((1, 1), (0, 0))).T.astype(np.int8)
  # Runs in class-major order, so starts and stops pair up and each class's runs are in time order.
  change = np.diff(active, axis=1)
  classes, starts = np.nonzero(change == 1)
  stops = np.nonzero(change == -1)[1]
  onsets, offsets = starts * hop_seconds, stops * hop_seconds
  keep = offsets - onsets >= min_duration
  classes, onsets, offsets = classes[keep], onsets[keep], offsets[keep]
  # A new event begins at each class's first run and after each gap longer than min_gap.
  first = np.ones(classes.size, bool)
  first[1:] = (classes[1:] != classes[:-1]) | (onsets[1:] - offsets[:-1] > min_gap)
  last = np.roll(first, -1)  # An event ends where the next begins; the last run ends the last.
  classes, onsets, offsets = classes[first], onsets[first], offsets[last]
  order = np.lexsort((classes, onsets))
  return [(float(onsets[k]), float(offsets[k]), labels[classes[k]]) for k in order]
