"""Post-processing of frame probabilities: median filter (against scipy), thresholds, the threshold
choice, decoding round trips, DCASE TSV files, and merging overlapping references."""

import numpy as np
import pytest
from scipy import ndimage

from soundjax.metrics import sed


def test_median_filter_equals_scipy_reflect_per_class():
  probabilities = np.random.default_rng(0).random((37, 3)).astype(np.float32)
  for window in (1, 3, 7):
    np.testing.assert_array_equal(sed.median_filter(probabilities, window),
                                  ndimage.median_filter(probabilities, size=(window, 1),
                                                        mode="reflect"))
  per_class = sed.median_filter(probabilities, [1, 5, 9])
  for column, window in enumerate((1, 5, 9)):
    np.testing.assert_array_equal(
        per_class[:, column], ndimage.median_filter(probabilities[:, column], size=window,
                                                    mode="reflect"))


def test_median_filter_on_a_hand_made_case_and_bad_windows():
  # One-frame blips vanish under a 3-frame median; a 3-frame event survives.
  x = np.array([0, 1, 0, 0, 1, 1, 1, 0, 0], np.float32)[:, None]
  np.testing.assert_array_equal(sed.median_filter(x, 3)[:, 0], [0, 0, 0, 0, 1, 1, 1, 0, 0])
  for bad in (2, 0, [3]):
    with pytest.raises(ValueError, match="odd integer"):
      sed.median_filter(np.zeros((4, 2)), bad)


def test_thresholds_global_and_per_class():
  p = np.array([[0.6, 0.6], [0.6, 0.9], [0.2, 0.9]])
  assert sed.probabilities_to_events(p, hop_seconds=0.5, labels=["a", "b"], threshold=0.5) == [
      (0.0, 1.0, "a"), (0.0, 1.5, "b")]
  assert sed.probabilities_to_events(p, hop_seconds=0.5, labels=["a", "b"],
                                     threshold=[0.7, 0.8]) == [(0.5, 1.5, "b")]
  with pytest.raises(ValueError, match="one per class"):
    sed.probabilities_to_events(p, hop_seconds=0.5, labels=["a", "b"], threshold=[0.5])


def test_choose_thresholds_picks_the_best_event_f_on_validation():
  # Class a's event scores 0.6, a spurious blip 0.4: 0.5 keeps the event and drops the blip.
  # Class b's event scores 0.3: only 0.2 finds it (and 0.2 also lets a's blip in).
  p = np.array([[0.6, 0.3], [0.6, 0.3], [0.1, 0.1], [0.4, 0.1]])
  reference = {"f.wav": [(0.0, 1.0, "a"), (0.0, 1.0, "b")]}
  kwargs = dict(hop_seconds=0.5, labels=["a", "b"], grid=[0.2, 0.5, 0.8], t_collar=0.2)
  per_class = sed.choose_thresholds({"f.wav": p}, reference, per_class=True, **kwargs)
  np.testing.assert_array_equal(per_class, [0.5, 0.2])
  # Globally: 0.2 finds 2 of 2 with one insertion (F 0.8); 0.5 finds 1 of 2 (F 0.667).
  assert sed.choose_thresholds({"f.wav": p}, reference, **kwargs) == 0.2
  # A class without reference events gets the largest threshold.
  only_a = {"f.wav": [(0.0, 1.0, "a")]}
  np.testing.assert_array_equal(
      sed.choose_thresholds({"f.wav": p}, only_a, per_class=True, **kwargs), [0.5, 0.8])


def test_events_round_trip_through_a_roll_at_frame_resolution():
  hop, labels = 0.02, ["dog", "car", "siren"]
  rng = np.random.default_rng(1)
  events = []
  for label in labels:
    starts = np.sort(rng.choice(np.arange(0, 200, 10), size=4, replace=False))
    events += [(int(s) * hop, (int(s) + int(rng.integers(1, 9))) * hop, label) for s in starts]
  roll = sed.events_to_roll(events, num_frames=220, hop_seconds=hop, labels=labels)
  decoded = sed.frames_to_events(roll.astype(np.float32), hop_seconds=hop, labels=labels)
  key = lambda e: (e[0], labels.index(e[2]))
  assert [(round(a / hop), round(b / hop), c) for a, b, c in sorted(decoded, key=key)] == \
      [(round(a / hop), round(b / hop), c) for a, b, c in sorted(events, key=key)]


def test_tsv_reads_back_exactly(tmp_path):
  events = {"a.wav": [(0.1, 0.30000000000000004, "dog"), (1 / 3, 2.0, "car")], "b.wav": []}
  path = tmp_path / "predictions.tsv"
  sed.write_events_tsv(path, events)
  lines = path.read_text().splitlines()
  assert lines[0] == "filename\tonset\toffset\tevent_label" and len(lines) == 3
  assert sed.read_events_tsv(path) == {"a.wav": events["a.wav"]}  # b.wav has no rows
  (tmp_path / "bad.tsv").write_text("filename\tonset\toffset\tevent_label\na.wav\tx\t1\tdog\n")
  with pytest.raises(ValueError, match="line 2: onset and offset must be numbers"):
    sed.read_events_tsv(tmp_path / "bad.tsv")


def test_merge_overlapping_joins_same_class_events_only():
  events = [(0.0, 1.0, "dog"), (0.5, 2.0, "dog"), (2.0, 2.5, "dog"), (3.0, 4.0, "dog"),
            (0.5, 0.7, "cat")]
  assert sed.merge_overlapping(events) == [(0.5, 0.7, "cat"), (0.0, 2.5, "dog"),
                                           (3.0, 4.0, "dog")]
  # Merged references cover the same frames.
  np.testing.assert_array_equal(
      sed.events_to_roll(events, num_frames=50, hop_seconds=0.1, labels=["cat", "dog"]),
      sed.events_to_roll(sed.merge_overlapping(events), num_frames=50, hop_seconds=0.1,
                         labels=["cat", "dog"]))
