"""sed metrics against sed_eval 0.2.1 (test-only reference), and frames_to_events."""

import math
from typing import NamedTuple

import dcase_util
import numpy as np
import pytest
import sed_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from soundjax.metrics import sed

LABELS = ["a", "b", "c"]
# sed_eval warns when it averages a figure that is NaN for every class.
pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")


def _container(events, filename):
  return dcase_util.containers.MetaDataContainer([
      {"event_onset": on, "event_offset": off, "event_label": label, "filename": filename}
      for on, off, label in events])


def _reference_metric(kind, reference, estimated, labels, **kwargs):
  """sed_eval evaluated file by file, as its documentation does."""
  metric_class = {"event": sed_eval.sound_event.EventBasedMetrics,
                  "segment": sed_eval.sound_event.SegmentBasedMetrics}[kind]
  metric = metric_class(event_label_list=list(labels), **kwargs)
  for name, events in reference.items():
    metric.evaluate(_container(events, name), _container(estimated.get(name, []), name))
  return metric


def _flat(groups):
  return {key: value for group in groups.values() for key, value in group.items()}


def _assert_figures(ours, theirs_figures, theirs_counts):
  """Every figure of sed_eval's results() is in ours and equal; our counts equal its counts."""
  assert set(theirs_figures) <= set(ours)
  theirs = {**theirs_figures, **theirs_counts}
  for key, value in ours.items():
    expected = theirs[key]
    assert (math.isnan(value) and math.isnan(expected)) or math.isclose(
        value, expected, rel_tol=1e-9, abs_tol=1e-12), (key, value, expected)


def _assert_parity(kind, reference, estimated, labels=None, **kwargs):
  """Our results equal sed_eval's; returns ours."""
  fn = {"event": sed.event_based, "segment": sed.segment_based}[kind]
  ours = fn(reference, estimated, labels=labels, **kwargs)
  if labels is None:
    labels = sorted({e[2] for lists in (reference, estimated) for f in lists.values() for e in f})
  metric = _reference_metric(kind, reference, estimated, labels, **kwargs)
  theirs = metric.results()
  _assert_figures(ours["overall"], _flat(theirs["overall"]), metric.overall)
  assert list(ours["class_wise"]) == list(labels)
  for label in labels:
    _assert_figures(ours["class_wise"][label], _flat(theirs["class_wise"][label]),
                    metric.class_wise[label])
  _assert_figures(ours["class_wise_average"], _flat(theirs["class_wise_average"]), {})
  assert set(ours["class_wise_average"]) == set(_flat(theirs["class_wise_average"]))
  return ours


def test_collar_edges_are_inclusive():
  # Differences exactly representable in binary: 0.25 is inside a 0.25 collar, 0.25 + 2**-20 not.
  reference = {"x": [(0.5, 2.0, "a"), (4.0, 6.0, "a")]}
  estimated = {"x": [(0.75, 2.0, "a"), (4.25 + 2**-20, 6.0, "a")]}
  ours = _assert_parity("event", reference, estimated, t_collar=0.25)
  assert ours["overall"]["Ntp"] == 1


def test_offset_condition_uses_percentage_of_length():
  # Reference length 4 s: offsets within max(0.2, 0.5 * 4) = 2 s pass, 2.5 s fails.
  reference = {"x": [(0.0, 4.0, "a"), (10.0, 14.0, "b")]}
  estimated = {"x": [(0.1, 2.0, "a"), (10.1, 11.5, "b")]}
  assert _assert_parity("event", reference, estimated)["overall"]["Ntp"] == 1
  onset_only = _assert_parity("event", reference, estimated, evaluate_offset=False)
  assert onset_only["overall"]["Ntp"] == 2
  offset_only = _assert_parity("event", reference, estimated, evaluate_onset=False)
  assert offset_only["overall"]["Ntp"] == 1


def test_wrong_label_is_a_substitution():
  reference = {"x": [(0.0, 1.0, "a"), (2.0, 3.0, "b")]}
  estimated = {"x": [(0.0, 1.0, "b"), (2.0, 3.0, "b"), (5.0, 6.0, "c")]}
  ours = _assert_parity("event", reference, estimated)
  assert (ours["overall"]["Nsubs"], ours["overall"]["Nfp"], ours["overall"]["Nfn"]) == (1, 1, 0)
  assert ours["overall"]["error_rate"] == pytest.approx(1.0)


def test_optimal_matching_beats_greedy():
  # The first reference grabs the estimate the second one needs under greedy matching.
  reference = {"x": [(0.0, 1.0, "a"), (0.3, 1.0, "a")]}
  estimated = {"x": [(0.15, 1.0, "a"), (0.05, 1.0, "a")]}
  optimal = _assert_parity("event", reference, estimated, event_matching_type="optimal")
  greedy = _assert_parity("event", reference, estimated, event_matching_type="greedy")
  assert (optimal["overall"]["Ntp"], greedy["overall"]["Ntp"]) == (2, 1)


def test_matching_ties_break_as_sed_eval():
  # One label-a estimate fits both references; sed_eval pairs it with the first, which leaves the
  # second free to be substituted by the label-b estimate. Pairing it with the second would not.
  reference = {"x": [(0.0, 1.0, "a"), (0.3, 1.0, "a")]}
  estimated = {"x": [(0.15, 1.0, "a"), (0.5, 1.0, "b")]}
  ours = _assert_parity("event", reference, estimated, evaluate_offset=False)
  assert (ours["overall"]["Ntp"], ours["overall"]["Nsubs"]) == (1, 1)


def test_multiple_files_and_missing_estimates():
  reference = {"x": [(0.0, 1.0, "a")], "y": [(1.0, 2.5, "b"), (3.0, 3.5, "a")],
               "z": [(0.2, 0.4, "a")]}
  estimated = {"y": [(1.1, 2.4, "b"), (3.5, 4.0, "a")], "x": [(0.0, 0.9, "a")]}
  assert _assert_parity("event", reference, estimated)["overall"]["Ntp"] == 2
  _assert_parity("segment", reference, estimated, time_resolution=0.5)
  as_lists = sed.event_based([reference["x"], reference["y"]], [estimated["x"]])
  np.testing.assert_equal(as_lists, sed.event_based({"x": reference["x"], "y": reference["y"]},
                                                    {"x": estimated["x"]}))  # NaN == NaN here.


class _NamedEvent(NamedTuple):
  onset: float
  offset: float
  label: str


def _dense_files(seed, n_files=60):
  """Many files, crowded with near-simultaneous same-class events on a 0.05 s grid, so that some
  files need a search for the maximum matching and the greedy rules chain within a file; some
  files are empty on one side or both."""
  rng = np.random.default_rng(seed)
  reference, estimated = {}, {}
  for f in range(n_files):
    events = [(on, on + 0.05 * rng.integers(0, 20), LABELS[rng.integers(3)])
              for on in 0.05 * rng.integers(0, 80, rng.integers(0, 12))]
    reference[f"f{f}"] = events if f % 7 else []
    jittered = []
    for on, off, label in events:
      on = max(0.0, on + 0.05 * rng.integers(-5, 6))
      jittered.append((on, max(on, off + 0.05 * rng.integers(-3, 6)),
                       label if rng.random() < 0.7 else LABELS[rng.integers(3)]))
    if f % 5:
      estimated[f"f{f}"] = [jittered[i] for i in rng.permutation(len(jittered))
                            if rng.random() < 0.8]
  return reference, estimated


@pytest.mark.parametrize("form", ["tuple", "list", "namedtuple", "numpy"])
@pytest.mark.parametrize("seed", range(2))
def test_many_files_match_sed_eval(seed, form):
  # All files are matched at once; numpy times and named tuples take the per-event checks.
  convert = {"tuple": tuple, "list": list, "namedtuple": lambda e: _NamedEvent(*e),
             "numpy": lambda e: (np.float64(e[0]), np.float64(e[1]), np.str_(e[2]))}[form]
  reference, estimated = ({name: [convert(e) for e in events] for name, events in side.items()}
                          for side in _dense_files(seed))
  for matching in ("optimal", "greedy"):
    _assert_parity("event", reference, estimated, labels=LABELS, event_matching_type=matching,
                   t_collar=0.2, evaluate_offset=False)
  _assert_parity("event", reference, estimated, labels=LABELS)
  _assert_parity("segment", reference, estimated, time_resolution=0.25)
  _assert_parity("segment", reference, estimated, labels=LABELS, time_resolution=1.0)


def test_no_files():
  assert sed.event_based({}, {}, labels=LABELS)["overall"]["Nref"] == 0
  assert sed.segment_based({}, {}, labels=LABELS)["overall"]["Nref"] == 0


@pytest.mark.parametrize("kind", ["event", "segment"])
def test_empty_estimates_and_absent_classes(kind):
  reference = {"x": [(0.0, 1.0, "a"), (2.0, 3.0, "b")]}
  empty = _assert_parity(kind, reference, {}, labels=LABELS)
  assert math.isnan(empty["overall"]["precision"]) and empty["overall"]["recall"] == 0
  assert math.isnan(empty["class_wise"]["c"]["recall"])
  # A class with estimates but no reference: sed_eval divides by Nref + eps.
  inserted = _assert_parity(kind, reference, {"x": [(0.0, 1.0, "c")]}, labels=LABELS)
  assert inserted["class_wise"]["c"]["insertion_rate"] > 1e15


def test_segment_boundaries_follow_float_rounding():
  # 0.3 / 0.1 = 2.9999999999999996: the reference starts in segment 2, where the estimate ends.
  reference = {"x": [(0.3, 0.5, "a")]}
  estimated = {"x": [(0.2, 0.3, "a"), (0.95, 0.95, "b"), (1.0, 1.0, "b")]}
  ours = _assert_parity("segment", reference, estimated, time_resolution=0.1)
  assert ours["overall"]["Ntp"] == 1
  assert ours["class_wise"]["b"]["Nsys"] == 1  # Zero length: 0.95 covers one segment, 1.0 none.


@pytest.mark.parametrize("estimated, kwargs, match", [
    ({"x": [(1.0, 0.5, "a")]}, {}, "onset <= offset"),
    ({"x": [(-0.1, 0.5, "a")]}, {}, "onset <= offset"),
    ({"x": [(float("nan"), 0.5, "a")]}, {}, "finite"),
    ({"x": [(0.0, 0.5)]}, {}, "onset, offset, label"),
    ({"x": [(0.0, 0.5, 3)]}, {}, "label"),
    ({"y": [(0.0, 0.5, "a")]}, {}, r"not in reference: \['y'\]"),
    ({}, {"labels": ["b"]}, r"missing from labels: \['a'\]"),
    ({}, {"t_collar": -0.1}, "t_collar"),
    ({}, {"percentage_of_length": 1.5}, "percentage_of_length"),
    ({}, {"evaluate_onset": False, "evaluate_offset": False}, "evaluate_onset"),
    ({}, {"event_matching_type": "hungarian"}, "event_matching_type"),
])
def test_event_based_rejects_bad_input(estimated, kwargs, match):
  with pytest.raises(ValueError, match=match):
    sed.event_based({"x": [(0.0, 1.0, "a")]}, estimated, **kwargs)


@pytest.mark.parametrize("resolution", [0.0, -1.0, float("nan")])
def test_segment_based_rejects_bad_resolution(resolution):
  with pytest.raises(ValueError, match="time_resolution"):
    sed.segment_based({"x": [(0.0, 1.0, "a")]}, {}, time_resolution=resolution)


# Times on a 50 ms grid (k * 0.05 in float, so collar and segment edges are hit with rounding).
_TIMES = st.integers(0, 60).map(lambda k: k * 0.05)
_STEPS = st.integers(-6, 6).map(lambda k: k * 0.05)
_EVENTS = st.builds(lambda onset, length, label: (onset, onset + length, label),
                    _TIMES, st.integers(0, 30).map(lambda k: k * 0.05), st.sampled_from(LABELS))


@st.composite
def _event_lists(draw):
  """A few files; estimates are jittered, relabelled or dropped references plus insertions."""
  reference, estimated = {}, {}
  for name in ("f0", "f1", "f2")[:draw(st.integers(1, 3))]:
    reference[name] = draw(st.lists(_EVENTS, max_size=6))
    est = []
    for onset, offset, label in reference[name]:
      if draw(st.booleans()):
        onset = max(0.0, onset + draw(_STEPS))
        offset = max(onset, offset + draw(_STEPS))
        est.append((onset, offset, draw(st.sampled_from(LABELS + [label] * 3))))
    est += draw(st.lists(_EVENTS, max_size=3))
    if est or draw(st.booleans()):
      estimated[name] = draw(st.permutations(est))
  return reference, estimated


@settings(max_examples=30, deadline=None)
@given(_event_lists(), st.sampled_from([0.05, 0.2, 0.25]), st.sampled_from([0.0, 0.5, 1.0]),
       st.sampled_from([(True, True), (True, False), (False, True)]),
       st.sampled_from(["optimal", "greedy"]))
def test_event_based_matches_sed_eval(lists, t_collar, percentage, flags, matching):
  _assert_parity("event", *lists, labels=LABELS, t_collar=t_collar,
                 percentage_of_length=percentage, evaluate_onset=flags[0],
                 evaluate_offset=flags[1], event_matching_type=matching)


@settings(max_examples=30, deadline=None)
@given(_event_lists(), st.sampled_from([0.05, 0.1, 0.25, 1.0]), st.booleans())
def test_segment_based_matches_sed_eval(lists, resolution, all_labels):
  _assert_parity("segment", *lists, labels=LABELS if all_labels else None,
                 time_resolution=resolution)


def test_frames_to_events_decodes_runs():
  activity = np.array([[0.1, 0.9], [0.2, 0.9], [0.6, 0.1], [0.2, 0.5]])
  events = sed.frames_to_events(activity, hop_seconds=0.5, labels=["a", "b"], threshold=0.5)
  assert events == [(0.0, 1.0, "b"), (1.0, 1.5, "a"), (1.5, 2.0, "b")]  # >= threshold is on.


def _render(events, frames, hop, labels):
  activity = np.zeros((frames, len(labels)), bool)
  for onset, offset, label in events:
    activity[round(onset / hop):round(offset / hop), labels.index(label)] = True
  return activity


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), max_size=25),
       st.sampled_from([0.0, 0.04, 0.1]), st.sampled_from([0.0, 0.04, 0.1]))
def test_frames_to_events_round_trip_and_dcase_util_processing(rows, min_duration, min_gap):
  activity, hop = np.array(rows, bool).reshape(-1, 3), 0.02
  events = sed.frames_to_events(activity, hop_seconds=hop, labels=LABELS)
  assert np.array_equal(_render(events, len(rows), hop, LABELS), activity)
  assert events == sorted(events, key=lambda e: (e[0], LABELS.index(e[2])))
  processed = sed.frames_to_events(activity, hop_seconds=hop, labels=LABELS,
                                   min_duration=min_duration, min_gap=min_gap)
  expected = _container(events, "x").process_events(minimum_event_length=min_duration,
                                                    minimum_event_gap=min_gap)
  assert sorted(processed) == sorted((e.onset, e.offset, e.event_label) for e in expected)


def test_frames_to_events_rejects_bad_input():
  with pytest.raises(ValueError, match="classes"):
    sed.frames_to_events(np.zeros((4, 2)), hop_seconds=0.1, labels=["a"])
  with pytest.raises(ValueError, match="hop_seconds"):
    sed.frames_to_events(np.zeros((4, 1)), hop_seconds=0.0, labels=["a"])
  with pytest.raises(ValueError, match="NaN"):
    sed.frames_to_events(np.full((4, 1), np.nan), hop_seconds=0.1, labels=["a"])
  with pytest.raises(ValueError, match="threshold"):
    sed.frames_to_events(np.zeros((4, 1)), hop_seconds=0.1, labels=["a"], threshold=np.inf)
