"""PSDS against psds_eval 0.5.3 (a test-only reference), closed forms and edge cases."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from soundjax.metrics import sed

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import psds_eval_compat  # noqa: E402  pylint: disable=g-import-not-at-top

LABELS = ["a", "b", "c"]  # Sorted, as psds_eval orders its classes.
SCENARIOS = {"psds1": sed.PSDS1, "psds2": sed.PSDS2,
             "no_std_penalty": sed.Scenario(0.5, 0.5, 0.3, 1.0, 0.0, None),
             "custom": sed.Scenario(0.3, 0.8, 0.1, 0.2, 2.0, 30.0)}


@pytest.fixture(scope="module")
def psds_eval():
  """(PSDSEval, pandas), or the test skips."""
  pytest.importorskip(
      "psds_eval.psds", reason="psds_eval is a test dependency: pip install psds_eval==0.5.3")
  return psds_eval_compat.load()


def _reference_psds(psds_eval, reference, durations, operating_points, scenario, labels=LABELS,
                    duration_unit="hour"):
  """psds_eval's evaluation object and PSDS."""
  psds_class, pd = psds_eval

  def table(events):
    rows = [(name, on, off, label) for name, lists in events.items() for on, off, label in lists]
    return pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"]).astype(
        {"onset": float, "offset": float})

  metadata = pd.DataFrame(list(durations.items()), columns=["filename", "duration"])
  with warnings.catch_warnings():  # Its pandas idioms warn.
    warnings.simplefilter("ignore")
    evaluation = psds_class(scenario.dtc_threshold, scenario.gtc_threshold,
                            scenario.cttc_threshold, ground_truth=table(reference),
                            metadata=metadata, class_names=labels, duration_unit=duration_unit)
    for events in operating_points:
      evaluation.add_operating_point(table(events))
    score = evaluation.psds(scenario.alpha_ct, scenario.alpha_st, scenario.max_efpr)
  return evaluation, score


def _assert_parity(psds_eval, reference, durations, operating_points, scenario, **kwargs):
  """Our score, rates and PSD-ROC equal psds_eval's; returns ours."""
  ours = sed.psds_from_operating_points(reference, durations, operating_points,
                                        scenario=scenario, labels=LABELS, **kwargs)
  evaluation, theirs = _reference_psds(psds_eval, reference, durations, operating_points,
                                       scenario, **kwargs)
  close = dict(rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(ours.value, theirs.value, **close)
  ops = evaluation.operating_points  # Distinct operating points only: it skips repeats.
  np.testing.assert_allclose(ours.tpr, np.stack(ops.tpr.values), **close)
  np.testing.assert_allclose(ours.fpr, np.stack(ops.fpr.values), **close)
  np.testing.assert_allclose(ours.ctr, np.stack(ops.ctr.values), **close)  # NaN diagonals too.
  rates = evaluation._effective_fp_rate(scenario.alpha_ct)  # pylint: disable=protected-access
  np.testing.assert_allclose(ours.efpr, rates.effective_fp_rate[:, :-1].T, **close)
  np.testing.assert_allclose(ours.roc_efpr, theirs.plt.xp, **close)
  np.testing.assert_allclose(ours.roc_etpr, theirs.plt.yp, **close)
  np.testing.assert_allclose(ours.roc_tpr, evaluation.psd_roc_curves(scenario.alpha_ct)[2].yp,
                             **close)
  return ours


def _random_events(rng, duration, labels, grid, spread, start=0.0):
  """Non-overlapping events per class from `start` (classes overlap each other), on `grid`."""
  events = []
  for label in labels:
    t = start
    while rng.random() > 0.25:
      t += rng.integers(0, spread) * grid
      length = rng.integers(0, 15) * grid  # Zero lengths too: psds_eval drops them.
      if t + length > duration + 1.0:
        break
      events.append((round(t, 6), round(t + length, 6), label))
      t += length + (grid if length == 0 else 0.0)
  return events


def _random_case(seed, n_files=5, n_ops=6):
  """Files of 2-6 s; file 1 has no reference events; some operating points skip a file, leave
  a file empty, never estimate class c, or detect past a file's end."""
  rng = np.random.default_rng(seed)
  grid = [0.1, 0.05, 0.02][seed % 3]
  durations = {f"f{i}.wav": float(rng.integers(20, 60) * 0.1) for i in range(n_files)}
  reference = {name: [] if i == 1 else _random_events(rng, d - 1.0, LABELS, grid, 15, 0.5)
               for i, (name, d) in enumerate(durations.items())}
  reference["f0.wav"] += [(0.0, 0.5, label) for label in LABELS]  # Every class has a reference.
  operating_points = []
  for k in range(n_ops):
    labels = LABELS[:2] if k % 2 else LABELS
    operating_points.append({name: _random_events(rng, d, labels, grid, 10 + 3 * k)
                             for name, d in durations.items() if rng.random() > 0.2})
  return reference, durations, operating_points


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("seed", range(6))
def test_matches_psds_eval_on_random_cases(psds_eval, seed, scenario):
  _assert_parity(psds_eval, *_random_case(seed), scenario)


@pytest.mark.parametrize("scenario", [sed.PSDS1, sed.PSDS2], ids=["psds1", "psds2"])
def test_matches_psds_eval_on_edge_cases(psds_eval, scenario):
  reference = {
      # A detection over three references sums its precisions to exactly 0.7 only with Kahan
      # summation (0.3 + 0.29999999999999993 + 0.09999999999999998), as pandas sums.
      "kahan.wav": [(0.0, 0.3, "a"), (0.4, 0.7, "a"), (0.8, 0.9, "a"), (2.0, 3.0, "b")],
      "duplicates.wav": [(1.0, 2.0, "a"), (1.0, 2.0, "a"), (1.5, 4.0, "c")],
      "zero.wav": [(1.0, 1.0, "b"), (2.0, 2.5, "c")],
  }
  durations = {"kahan.wav": 10.0, "duplicates.wav": 5.0, "zero.wav": 3.0, "empty.wav": 4.0}
  operating_points = [
      {"kahan.wav": [(0.0, 1.0, "a"), (1.9, 3.2, "c")]},
      # Identical detections both count; one past the file's end is no false positive.
      {"duplicates.wav": [(1.2, 2.0, "a"), (1.2, 2.0, "a"), (1.0, 4.0, "b"), (6.0, 7.0, "b")],
       "zero.wav": [(1.0, 1.0, "b"), (0.5, 2.9, "c")], "empty.wav": [(0.0, 4.0, "c")]},
      {"kahan.wav": [(0.0, 0.2, "a"), (2.1, 2.2, "b"), (2.5, 9.0, "b")],
       "empty.wav": [(1.0, 2.0, "a"), (2.0, 3.0, "a")]},
      {},  # No detections at all.
  ]
  ours = _assert_parity(psds_eval, reference, durations, operating_points, scenario)
  _assert_parity(psds_eval, reference, durations, operating_points, scenario,
                 duration_unit="minute")
  if scenario is sed.PSDS1:
    # The Kahan sum passes (three a's found) and both duplicate a's count (five in all).
    assert ours.tpr[0, 0] == 3 / 5


def test_probabilities_match_psds_eval_and_frames_to_events(psds_eval):
  rng = np.random.default_rng(0)
  hop, frames = 0.05, [40, 60, 1, 80]
  durations = {f"f{i}.wav": n * hop for i, n in enumerate(frames)}
  reference = {name: _random_events(rng, d - 0.5, LABELS, hop, 10, 0.2) for name, d in
               durations.items()}
  reference["f0.wav"] += [(0.0, 0.2, label) for label in LABELS]
  # Noisy reference rolls on a 0.05 grid, so frames tie with thresholds; float32, as a model
  # outputs.
  probabilities = {name: (0.3 * sed.events_to_roll(reference[name], num_frames=n, hop_seconds=hop,
                                                   labels=LABELS)
                          + 0.05 * rng.integers(0, 15, (n, 3))).astype(np.float32)
                   for name, n in zip(durations, frames)}
  # Two silent hours (one frame of zeros decodes to no event): without them the few seconds
  # above put every false positive rate beyond max_efpr (100 per hour) and both scores are 0.
  durations["silent.wav"], reference["silent.wav"] = 7200.0, []
  probabilities["silent.wav"] = np.zeros((1, 3), np.float32)
  thresholds = list(np.linspace(0.05, 0.95, 19))  # float64 thresholds compare exactly.
  decoded = [{name: sed.frames_to_events(p, hop_seconds=hop, labels=LABELS, threshold=t)
              for name, p in probabilities.items()} for t in thresholds]
  for scenario in (sed.PSDS1, sed.PSDS2):
    ours = sed.psds_from_probabilities(reference, durations, probabilities, hop_seconds=hop,
                                       thresholds=thresholds, labels=LABELS, scenario=scenario)
    expected = sed.psds_from_operating_points(reference, durations, decoded, scenario=scenario,
                                              labels=LABELS)
    for ours_field, expected_field in zip(ours, expected):
      np.testing.assert_array_equal(ours_field, expected_field)
    _, theirs = _reference_psds(psds_eval, reference, durations, decoded, scenario)
    np.testing.assert_allclose(ours.value, theirs.value, rtol=1e-12, atol=1e-12)
    assert 0 < ours.value < 1, ours.value


def test_closed_form_psd_roc():
  # One hour of audio. Point 1: a found, b not; point 2: both found, with 50 false b's.
  reference = {"x.wav": [(0.0, 10.0, "a"), (20.0, 30.0, "b")]}
  false_bs = [(100.0 + 10 * k, 105.0 + 10 * k, "b") for k in range(50)]
  operating_points = [{"x.wav": [(0.0, 10.0, "a")]},
                      {"x.wav": [(0.0, 10.0, "a"), (20.0, 30.0, "b")] + false_bs}]

  def score(**kwargs):
    return sed.psds_from_operating_points(reference, {"x.wav": 3600.0}, operating_points,
                                          scenario=sed.Scenario(0.7, 0.7, 0.3, **kwargs))

  # The mean TPR is 0.5 on [0, 50) and 1 on [50, 100]; the std 0.5, then 0.
  result = score(alpha_ct=0.0, alpha_st=0.0, max_efpr=100.0)
  np.testing.assert_array_equal(result.fpr, [[0, 0], [0, 50]])
  np.testing.assert_array_equal(result.roc_efpr, [0, 50])
  assert result.value == pytest.approx((50 * 0.5 + 50 * 1.0) / 100)
  assert score(alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0).value == pytest.approx(0.5)
  assert score(alpha_ct=0.0, alpha_st=0.0, max_efpr=40.0).value == pytest.approx(0.5)
  assert score(alpha_ct=0.0, alpha_st=0.0, max_efpr=None).value == pytest.approx(0.5)
  # The false b's sit in no a reference, so they cross-trigger nothing.
  assert score(alpha_ct=1.0, alpha_st=0.0, max_efpr=100.0).value == pytest.approx(0.75)


@pytest.mark.parametrize("criterion", ["dtc", "gtc", "cttc"])
def test_criteria_pass_at_their_threshold(criterion):
  # Exact binary fractions: 0.75 of a 1 s event meets 0.75; 0.75 - 2**-20 does not.
  reference = {"x.wav": [(0.0, 1.0, "a"), (5.0, 6.0, "b")]}
  scenario = sed.Scenario(0.1, 0.1, 0.1, alpha_ct=1.0, alpha_st=0.0, max_efpr=100.0)
  scenario = scenario._replace(**{f"{criterion}_threshold": 0.75})
  for shift, passes in ((0.0, True), (2**-20, False)):
    if criterion == "cttc":  # A b detection 0.75 inside a's reference cross-triggers on a.
      events = [(0.25 + shift, 1.25 + shift, "b")]
    else:  # DTC: 0.75 of the detection on the reference; GTC: 0.75 of the reference detected.
      events = [(0.25 + shift, 1.25 + shift, "a")] if criterion == "dtc" else [(0.25 + shift,
                                                                                  1.0, "a")]
    result = sed.psds_from_operating_points(reference, {"x.wav": 10.0}, [{"x.wav": events}],
                                            scenario=scenario)
    found = result.ctr[0, 1, 0] > 0 if criterion == "cttc" else result.tpr[0, 0] == 1
    assert found == passes, (criterion, shift)


def test_psds_from_probabilities_equals_decoded_operating_points():
  rng = np.random.default_rng(1)
  hop = 0.02
  probabilities = [rng.random((n, 3)) for n in (100, 0, 250)]
  durations = [len(p) * hop + 0.5 for p in probabilities]
  reference = [_random_events(rng, d - 0.5, LABELS, hop, 20, 0.1) for d in durations]
  reference[0] += [(0.0, 0.1, label) for label in LABELS]
  thresholds = [0.2, 0.5, 0.55, 0.9]
  decoded = [[sed.frames_to_events(p, hop_seconds=hop, labels=LABELS, threshold=t)
              for p in probabilities] for t in thresholds]
  ours = sed.psds_from_probabilities(reference, durations, probabilities, hop_seconds=hop,
                                     thresholds=thresholds, labels=LABELS, scenario=sed.PSDS2)
  expected = sed.psds_from_operating_points(reference, durations, decoded, scenario=sed.PSDS2,
                                            labels=LABELS)
  for ours_field, expected_field in zip(ours, expected):
    np.testing.assert_array_equal(ours_field, expected_field)


def test_psds_from_probabilities_decodes_every_level_as_frames_to_events():
  # Smooth float32 scores with plateaus equal to thresholds; thresholds below every score (whole
  # files active), above every score (no events) and 40 in between.
  rng = np.random.default_rng(2)
  hop = 0.05
  probabilities = {f"f{i}.wav": np.round(np.cumsum(rng.normal(0, 0.1, (n, 3)), 0) % 1, 1)
                   .astype(np.float32) for i, n in enumerate((30, 1, 120, 75))}
  durations = {name: len(p) * hop for name, p in probabilities.items()}
  reference = {name: [(0.0, 0.5, label) for label in LABELS] for name in probabilities}
  thresholds = [-1.0] + list(np.linspace(0.0, 1.0, 41)) + [2.0]
  decoded = [{name: sed.frames_to_events(p, hop_seconds=hop, labels=LABELS,
                                         threshold=np.float64(t))
              for name, p in probabilities.items()} for t in thresholds]
  assert not any(decoded[-1].values()) and all(len(e) == 3 for e in decoded[0].values())
  ours = sed.psds_from_probabilities(reference, durations, probabilities, hop_seconds=hop,
                                     thresholds=thresholds, labels=LABELS, scenario=sed.PSDS1)
  expected = sed.psds_from_operating_points(reference, durations, decoded, scenario=sed.PSDS1,
                                            labels=LABELS)
  for ours_field, expected_field in zip(ours, expected):
    np.testing.assert_array_equal(ours_field, expected_field)


_REFERENCE = {"x.wav": [(0.0, 1.0, "a"), (2.0, 3.0, "b")]}


@pytest.mark.parametrize("kwargs, match", [
    ({"operating_points": [{"y.wav": [(0.0, 1.0, "a")]}]}, r"without a duration: \['y.wav'\]"),
    ({"operating_points": [{"x.wav": [(0.0, 1.0, "d")]}]}, "missing from labels"),
    ({"operating_points": [{"x.wav": [(0.0, 1.0, "a"), (0.5, 2.0, "a")]}]}, "overlapping"),
    ({"reference": {"x.wav": [(0.0, 1.0, "a"), (0.5, 2.0, "a"), (2, 3, "b")]}}, "overlapping"),
    ({"reference": {"x.wav": [(0.0, 1.0, "a")]}}, "two or more labels"),
    ({"labels": ["a", "b", "c"]}, "two or more labels"),
    ({"durations": {"x.wav": 0.0}}, "duration"),
    ({"durations": {}}, "at least one file"),
    ({"operating_points": []}, "at least one operating point"),
    ({"scenario": sed.PSDS1._replace(dtc_threshold=1.5)}, "dtc_threshold"),
    ({"scenario": sed.PSDS1._replace(alpha_st=-1.0)}, "alpha_st"),
    ({"scenario": sed.PSDS1._replace(max_efpr=0.0)}, "max_efpr"),
    ({"scenario": (0.7, 0.7, 0.3, 0.0, 1.0, 100.0)}, "Scenario"),
    ({"duration_unit": "week"}, "duration_unit"),
])
def test_rejects_bad_input(kwargs, match):
  arguments = dict(reference=_REFERENCE, durations={"x.wav": 5.0},
                   operating_points=[{"x.wav": [(0.0, 1.0, "a")]}])
  arguments.update(kwargs)
  with pytest.raises(ValueError, match=match):
    sed.psds_from_operating_points(**arguments)


@pytest.mark.parametrize("probabilities, kwargs, match", [
    ({"x.wav": np.zeros((5, 3))}, {}, "2 classes"),
    ({"x.wav": np.full((5, 2), np.nan)}, {}, "NaN"),
    ({"y.wav": np.zeros((5, 2))}, {}, "without a duration"),
    ({"x.wav": np.zeros((5, 2))}, {"thresholds": [0.5, 0.2]}, "thresholds"),
    ({"x.wav": np.zeros((5, 2))}, {"hop_seconds": 0.0}, "hop_seconds"),
])
def test_psds_from_probabilities_rejects_bad_input(probabilities, kwargs, match):
  arguments = dict(hop_seconds=0.1, thresholds=[0.5], labels=["a", "b"])
  arguments.update(kwargs)
  with pytest.raises(ValueError, match=match):
    sed.psds_from_probabilities(_REFERENCE, {"x.wav": 5.0}, probabilities, **arguments)
