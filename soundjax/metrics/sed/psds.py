"""PSDS, DCASE 2021-2023 task 4's Polyphonic Sound Detection Score, equal to psds_eval 0.5.3's.

`psds_from_operating_points` scores event lists (one per decision threshold) and
`psds_from_probabilities` frame probabilities decoded at a sweep of thresholds. Both give
`PSDSEval(dtc, gtc, cttc)`, `add_operating_point(...)` per list, then `psds(alpha_ct, alpha_st,
max_efpr).value`, with numpy over all intersecting (detection, reference) pairs at once instead of
pandas joins. psds_eval's rules, for each operating point:

- Every file gets a "world" reference event `[0, duration]`; events of zero length are dropped.
  A detection and a reference intersect when they overlap by a positive length; the detection's
  precision is the intersection over its length, the reference's coverage over the reference's.
- DTC: a detection passes when its precisions with same-class references sum to `>= dtc`.
- GTC: a reference is a true positive when its coverages by DTC-passing same-class detections sum
  to `>= gtc`; `tpr[c]` = true positives / references of class c.
- A detection failing the DTC is a false positive if it intersects the world event (`fpr`: false
  positives per duration unit of audio) and a cross-trigger on class k if its precisions with
  class-k references sum to `>= cttc` (`ctr[c, k]`: per unit of class-k reference time).
- `efpr[c] = fpr[c] + alpha_ct * mean_k ctr[c, k]`. With a (0, 0) point added, class c's ROC at
  x is the best `tpr[c]` of the operating points with `efpr[c] <= x`, sampled at every eFPR of
  every class; `etpr = max(0, mean_c - alpha_st * std_c)` (population std); PSDS is the area of
  the `etpr` staircase over `[0, max_efpr]`, divided by `max_efpr`.

Sums of several precisions or coverages are Kahan-compensated in onset order, as pandas' groupby
sum is, so a criterion lands on the same side of its threshold as in psds_eval. Where psds_eval
would crash or silently ignore, this raises `ValueError`: a label without reference events (a
KeyError there), one class only (NaN rates there), a detection in a file without a duration or
with a label outside `labels` (ignored there), same-class events that overlap.
"""

import warnings
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from soundjax import checks
from soundjax.metrics.sed.common import by_file, prepare_tables
from soundjax.types import EventLists

SECONDS_PER_UNIT = {"minute": 60, "hour": 3600, "day": 24 * 3600, "month": 30 * 24 * 3600,
                    "year": 365 * 24 * 3600}  # psds_eval's `secs_in_uot`.


class Scenario(NamedTuple):
  """An evaluation scenario: psds_eval's criteria thresholds and score weights."""
  dtc_threshold: float
  gtc_threshold: float
  cttc_threshold: float
  alpha_ct: float
  alpha_st: float
  max_efpr: Optional[float] = 100.0  # None: the largest eFPR reached, as psds_eval's default.


# DCASE 2021-2023 task 4: PSDS1 rewards localisation, PSDS2 penalises cross-triggers.
PSDS1 = Scenario(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=0.3, alpha_ct=0.0,
                 alpha_st=1.0, max_efpr=100.0)
PSDS2 = Scenario(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5,
                 alpha_st=1.0, max_efpr=100.0)


class PSDSResult(NamedTuple):
  """The score and its intermediate figures; rates are per duration unit, classes in `labels`."""
  value: float
  labels: Tuple[str, ...]
  tpr: np.ndarray  # [operating points, classes]
  fpr: np.ndarray  # [operating points, classes]
  ctr: np.ndarray  # [operating points, detected class, crossed class], NaN on the diagonal
  efpr: np.ndarray  # [operating points, classes]
  roc_efpr: np.ndarray  # [points]: the PSD-ROC's x, every eFPR reached (and 0)
  roc_tpr: np.ndarray  # [classes, points]: each class's ROC
  roc_etpr: np.ndarray  # [points]: the PSD-ROC, max(0, mean - alpha_st * std)


class _Events(NamedTuple):
  """Events of all files, sorted by (file, onset); label n is the world."""
  file: np.ndarray
  onset: np.ndarray
  offset: np.ndarray
  label: np.ndarray


def _table(file, onset, offset, label, what: str) -> _Events:
  """Drops zero-length events, sorts, and rejects same-class overlaps as psds_eval does."""
  keep = offset > onset
  file, onset, offset, label = file[keep], onset[keep], offset[keep], label[keep]
  # Identical duplicates are allowed (psds_eval counts each); once removed, an overlap shows
  # between neighbours in (file, label, onset) order.
  rows = np.unique(np.stack([file, label, onset, offset], 1).astype(np.float64), axis=0)
  clash = (rows[1:, :2] == rows[:-1, :2]).all(1) & (rows[1:, 2] < rows[:-1, 3])
  if clash.any():
    raise ValueError(f"{what} has overlapping events of one class in one file, e.g. "
                     f"{rows[:-1][clash][0, 2:].tolist()} and {rows[1:][clash][0, 2:].tolist()}")
  order = np.lexsort((onset, file))
  return _Events(file[order], onset[order], offset[order], label[order])


def _files(events: EventLists, durations: dict, labels, what: str):
  """Checked events of every file in `durations`, concatenated: (file, onset, offset, label)."""
  events = by_file(events, what)
  extra = [name for name in events if name not in durations]
  if extra:
    raise ValueError(f"{what} has files without a duration: {extra}")
  given, empty = {name: events.get(name, ()) for name in durations}, dict.fromkeys(durations, ())
  side = int(what != "reference")  # prepare's messages name the side ("reference file 'x'").
  labels, _, *tables = prepare_tables(*((given, empty) if side == 0 else (empty, given)), labels)
  return labels, tuple(tables[side])


class _Reference(NamedTuple):
  events: _Events  # with one world event per file
  start: np.ndarray  # [files]: each file's first event
  count: np.ndarray  # [files]: its number of events
  number: np.ndarray  # [classes]: references per class
  seconds: np.ndarray  # [classes]: reference time per class
  total_seconds: float


def _reference(reference: EventLists, durations, labels) -> Tuple[List[str], _Reference, dict]:
  durations = {name: checks.positive(f"the duration of {name!r}", value)
               for name, value in by_file(durations, "durations", "durations").items()}
  if not durations:
    raise ValueError("durations must list at least one file")
  labels, (file, onset, offset, label) = _files(reference, durations, labels, "reference")
  n, seconds = len(labels), np.array(list(durations.values()))
  world = np.arange(len(durations))
  events = _table(np.concatenate([file, world]), np.concatenate([onset, 0 * seconds]),
                  np.concatenate([offset, seconds]), np.concatenate([label, world * 0 + n]),
                  "reference")
  real = events.label < n
  number = np.bincount(events.label[real], minlength=n)
  if n < 2 or not number.all():
    raise ValueError(f"PSDS needs two or more labels, each with a reference event of positive "
                     f"length; got {dict(zip(labels, number.tolist()))}")
  start = np.searchsorted(events.file, world)
  return labels, _Reference(
      events, start, np.diff(np.append(start, events.file.size)), number,
      np.bincount(events.label[real], (events.offset - events.onset)[real], n),
      float(seconds.sum())), durations


def _group_sums(keys: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Sums of `values` per run of equal `keys`, in order, Kahan-compensated like pandas' sum."""
  first = np.ones(keys.size, bool)
  first[1:] = keys[1:] != keys[:-1]
  group = np.cumsum(first) - 1
  starts = np.flatnonzero(first)
  position = np.arange(keys.size) - starts[group]
  total, compensation = np.zeros(starts.size), np.zeros(starts.size)
  order = np.argsort(position, kind="stable")
  bounds = np.searchsorted(position[order], np.arange(position.max(initial=-1) + 2))
  for lo, hi in zip(bounds[:-1], bounds[1:]):  # The k-th term of every group at once.
    g, v = group[order[lo:hi]], values[order[lo:hi]]
    y = v - compensation[g]
    t = total[g] + y
    compensation[g] = (t - total[g]) - y
    total[g] = t
  return keys[starts], total


def _counts(ref: _Reference, det: _Events, n: int, scenario: Scenario):
  """One operating point's true positives [n] and detections per (class, crossed class or world)
  [n, n + 1], from every (detection, reference) pair of one file that overlaps."""
  per_det = ref.count[det.file]
  d = np.repeat(np.arange(det.file.size), per_det)
  g = np.arange(d.size) + np.repeat(ref.start[det.file] - np.cumsum(per_det) + per_det, per_det)
  on = np.maximum(det.onset[d], ref.events.onset[g])
  off = np.minimum(det.offset[d], ref.events.offset[g])
  keep = on < off
  d, g, inter = d[keep], g[keep], (off - on)[keep]
  precision = inter / (det.offset - det.onset)[d]
  coverage = inter / (ref.events.offset - ref.events.onset)[g]
  crossed = ref.events.label[g]
  same = det.label[d] == crossed
  passed, sums = _group_sums(d[same], precision[same])  # Pairs are in (detection, onset) order.
  dtc = np.zeros(det.file.size, bool)
  dtc[passed[sums >= scenario.dtc_threshold]] = True
  hit = same & dtc[d]
  order = np.argsort(g[hit], kind="stable")
  covered, sums = _group_sums(g[hit][order], coverage[hit][order])
  tp = np.bincount(ref.events.label[covered[sums >= scenario.gtc_threshold]], minlength=n)
  cross = ~same & ~dtc[d]
  key = d[cross] * (n + 1) + crossed[cross]
  order = np.argsort(key, kind="stable")
  keys, sums = _group_sums(key[order], precision[cross][order])
  counted = keys[(sums >= scenario.cttc_threshold) | (keys % (n + 1) == n)]
  index = det.label[counted // (n + 1)] * (n + 1) + counted % (n + 1)
  return tp, np.bincount(index, minlength=n * (n + 1)).reshape(n, n + 1)


def _score(labels, ref: _Reference, counts, scenario: Scenario, duration_unit: str) -> PSDSResult:
  n, unit = len(labels), SECONDS_PER_UNIT[duration_unit]
  tp = np.array([c[0] for c in counts], np.float64).reshape(-1, n)
  crossed = np.array([c[1] for c in counts], np.float64).reshape(-1, n, n + 1)
  tpr = tp / ref.number
  fpr = crossed[:, :, n] * unit / ref.total_seconds
  ctr = crossed[:, :, :n] * unit / ref.seconds
  ctr[:, np.arange(n), np.arange(n)] = np.nan
  # psds_eval's (0, 0) operating point, whose cross-trigger rates are all 0, diagonal included.
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    efpr = np.vstack([fpr + scenario.alpha_ct * np.nanmean(ctr, axis=2), np.zeros(n)])
  points = np.unique(efpr)
  roc = np.empty((n, points.size))
  for c in range(n):  # Per class: the best TPR at each eFPR or below (classes are few).
    order = np.argsort(efpr[:, c], kind="stable")
    best = np.maximum.accumulate(np.append(tpr[:, c], 0.0)[order])
    roc[c] = best[np.searchsorted(efpr[order, c], points, side="right") - 1]
  etpr = np.nan_to_num(np.nanmean(roc, 0) - scenario.alpha_st * np.nanstd(roc, 0), nan=0.0)
  etpr = np.where(etpr < 0, 0.0, etpr)
  max_efpr = points.max() if scenario.max_efpr is None else scenario.max_efpr
  below = points < max_efpr
  area = np.sum(np.diff(np.append(points[below], max_efpr)) * etpr[below])
  return PSDSResult(float(area / max_efpr), tuple(labels), tpr, fpr, ctr, efpr[:-1], points, roc,
                    etpr)


def _check(scenario: Scenario, duration_unit: str) -> Scenario:
  if not isinstance(scenario, Scenario):
    raise ValueError(f"scenario must be a Scenario (e.g. PSDS1), got {scenario!r}")
  for name in ("dtc_threshold", "gtc_threshold", "cttc_threshold", "alpha_ct"):
    checks.fraction(f"scenario.{name}", getattr(scenario, name))
  checks.nonnegative("scenario.alpha_st", scenario.alpha_st)
  if scenario.max_efpr is not None:
    checks.positive("scenario.max_efpr", scenario.max_efpr)
  checks.one_of("duration_unit", duration_unit, list(SECONDS_PER_UNIT))
  return scenario


def psds_from_operating_points(reference: EventLists, durations,
                               operating_points: Sequence[EventLists], *,
                               scenario: Scenario = PSDS1, labels: Optional[Sequence[str]] = None,
                               duration_unit: str = "hour") -> PSDSResult:
  """psds_eval's PSDS of a system's operating points (its detections at each threshold).

  Args:
    reference: `{filename: [(onset, offset, label), ...]}`, or a list of per-file event lists;
      files missing from it have no reference events.
    durations: `{filename: seconds}` (or a list) for every file evaluated, reference or not.
    operating_points: one event collection like `reference` per operating point.
    scenario: the criteria and weights, `PSDS1`, `PSDS2` or a `Scenario` of your own.
    labels: the classes; default the sorted reference labels. Each needs a reference event.
    duration_unit: what the rates count per: "minute", "hour" (DCASE's), "day", "month", "year".

  Returns:
    A `PSDSResult`: the score (`value`), per-operating-point rates and the PSD-ROC.

  Example:
    >>> ref = {"a.wav": [(0.0, 1.0, "dog"), (2.0, 3.0, "cat")]}
    >>> ops = [{"a.wav": [(0.0, 1.0, "dog")]}, {"a.wav": [(0.0, 1.0, "dog"), (2.0, 3.0, "cat")]}]
    >>> psds_from_operating_points(ref, {"a.wav": 10.0}, ops).value
    1.0
  """
  scenario = _check(scenario, duration_unit)
  if not operating_points:
    raise ValueError("operating_points must hold at least one operating point")
  labels, ref, durations = _reference(reference, durations, labels)
  counts = []
  for i, events in enumerate(operating_points):
    what = f"operating point {i}"
    counts.append(_counts(ref, _table(*_files(events, durations, labels, what)[1], what),
                          len(labels), scenario))
  return _score(labels, ref, counts, scenario, duration_unit)


def _crossings(positions: np.ndarray, low: np.ndarray, high: np.ndarray,
               n_thresholds: int) -> Tuple[np.ndarray, np.ndarray]:
  """Each position repeated for each threshold index in `[low, high)`, grouped by threshold.

  Returns:
    (positions, bounds): threshold k's positions, in order, are `positions[bounds[k]:bounds[k+1]]`.
  """
  count = high.astype(np.int64) - low
  repeated = np.repeat(positions, count)
  k = np.repeat(low - np.cumsum(count) + count, count) + np.arange(repeated.size)
  # A stable sort of 16-bit keys is a radix sort in numpy: linear in the number of crossings.
  order = np.argsort(k.astype(np.int16 if n_thresholds < 2**15 else np.int64), kind="stable")
  return repeated[order], np.searchsorted(k[order], np.arange(n_thresholds + 1))


def _decode(probabilities: List[np.ndarray], files: np.ndarray, n: int, hop_seconds: float,
            thresholds: Sequence[float]):
  """`frames_to_events` of every file at each threshold, as one `_Events` per threshold.

  With `level[t]` the number of thresholds `<= p[t]` (frame t is active at threshold k when
  `k < level[t]`), frame t starts a run at the thresholds `level[t - 1] <= k < level[t]` and ends
  one (exclusive) at `level[t] <= k < level[t - 1]`. So the frames meet the thresholds once, in a
  binary search, and only the frames where the level changes are expanded, instead of comparing
  and scanning every frame at every threshold (90 % of the decoding time of 50 thresholds).
  """
  lengths = np.array([p.shape[0] for p in probabilities], int)
  # A -inf frame before, between and after the files keeps every run inside its file.
  first = np.cumsum(lengths + 1) - lengths
  # float64 compares exactly; a float32 array against a Python float would round the threshold.
  stacked = np.full((n, lengths.sum() + lengths.size + 1), -np.inf)
  for p, start, length in zip(probabilities, first, lengths):
    stacked[:, start:start + length] = p.T
  thresholds = np.asarray(thresholds, np.float64)
  width = stacked.shape[1]
  # Flat, class-major: row ends are -inf, so no run crosses from one class into the next.
  level = np.searchsorted(thresholds, stacked.ravel(), side="right").astype(np.int32)
  step = np.diff(level)
  up, down = np.flatnonzero(step > 0) + 1, np.flatnonzero(step < 0) + 1
  starts, start_bounds = _crossings(up, level[up - 1], level[up], thresholds.size)
  stops, stop_bounds = _crossings(down, level[down], level[down - 1], thresholds.size)
  for k in range(thresholds.size):
    start = starts[start_bounds[k]:start_bounds[k + 1]]  # Runs in class-major order.
    stop = stops[stop_bounds[k]:stop_bounds[k + 1]] % width
    label, start = np.divmod(start, width)
    file = np.searchsorted(first, start, side="right") - 1
    onset, offset = (start - first[file]) * hop_seconds, (stop - first[file]) * hop_seconds
    order = np.lexsort((onset, file))
    yield _Events(files[file[order]], onset[order], offset[order], label[order])


def psds_from_probabilities(reference: EventLists, durations, probabilities, *,
                            hop_seconds: float, thresholds: Sequence[float],
                            labels: Sequence[str], scenario: Scenario = PSDS1,
                            duration_unit: str = "hour") -> PSDSResult:
  """PSDS of frame probabilities decoded with `frames_to_events` at each of `thresholds`.

  Equal to `psds_from_operating_points` of the decoded event lists (so to psds_eval's), with the
  decoding done for all files at once. Frames compare with the thresholds in float64, as
  `frames_to_events` does given float64 thresholds (a float32 array against a Python float
  compares in float32 there).

  Args:
    reference: `{filename: [(onset, offset, label), ...]}`, or a list of per-file event lists.
    durations: `{filename: seconds}` (or a list) for every file evaluated.
    probabilities: `{filename: [frames, classes]}` (or a list); files missing have no detections.
    hop_seconds: seconds between frame starts.
    thresholds: the operating points' thresholds, strictly increasing (DCASE uses 50).
    labels: one label per probability column.
    scenario: `PSDS1`, `PSDS2` or a `Scenario`.
    duration_unit: what the rates count per ("hour" in DCASE).

  Returns:
    A `PSDSResult`, one operating point per threshold.

  Example:
    >>> probs = {"a.wav": np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.7]])}
    >>> ref = {"a.wav": [(0.0, 1.0, "dog"), (1.0, 1.5, "cat")]}
    >>> psds_from_probabilities(ref, {"a.wav": 1.5}, probs, hop_seconds=0.5,
    ...                         thresholds=[0.5, 0.8], labels=["dog", "cat"]).tpr
    array([[1., 1.],
           [1., 0.]])
  """
  scenario = _check(scenario, duration_unit)
  hop_seconds = checks.positive("hop_seconds", hop_seconds)
  thresholds = checks.increasing("thresholds", thresholds)
  labels, ref, durations = _reference(reference, durations, list(labels))
  probabilities = by_file(probabilities, "probabilities", "probability matrices")
  extra = [name for name in probabilities if name not in durations]
  if extra:
    raise ValueError(f"probabilities has files without a duration: {extra}")
  arrays = [np.asarray(p) for p in probabilities.values()]
  for name, p in zip(probabilities, arrays):
    if p.ndim != 2 or p.shape[1] != len(labels):
      raise ValueError(f"probabilities[{name!r}] must be [frames, {len(labels)} classes], got "
                       f"{p.shape}")
    if np.isnan(p.astype(np.float64)).any():
      raise ValueError(f"probabilities[{name!r}] must not contain NaN")
  index = {name: i for i, name in enumerate(durations)}
  files = np.array([index[name] for name in probabilities], int)
  counts = [_counts(ref, events, len(labels), scenario)
            for events in _decode(arrays, files, len(labels), hop_seconds, thresholds)]
  return _score(labels, ref, counts, scenario, duration_unit)
