"""Event- and segment-based sound event detection metrics equal to sed_eval 0.2.1's.

`event_based` and `segment_based` reproduce `sed_eval.sound_event.EventBasedMetrics` and
`SegmentBasedMetrics` evaluated file by file (per-file counts summed, then the figures), quirks
included (see `sed.common`). Events are `(onset, offset, label)` in seconds, grouped per file as
`{filename: [event, ...]}` or as a list of per-file lists.

Results flatten sed_eval's nested groups: our `["overall"]["precision"]` is sed_eval's
`results()["overall"]["f_measure"]["precision"]`, `["class_wise"][label]["deletion_rate"]` its
`["class_wise"][label]["error_rate"]["deletion_rate"]`, `["class_wise"][label]["Nref"]` its
`["class_wise"][label]["count"]["Nref"]`, and the segment-based accuracy group is flattened the
same way. Counts (keys starting with N, plus S/D/I) are sed_eval's accumulator names, as ints.
Host-side numpy: these run once on decoded events.

Edge cases, as sed_eval: with no estimated events (`Nsys == 0`) precision is NaN, recall 0 and
the F-measure NaN, not 0; with no reference events recall and the F-measure are NaN and the
rates, divided by `Nref + eps`, near 4.5e15 per insertion. A class-wise figure is NaN for a class
the same way, and `class_wise_average` is the mean over the classes where it is not NaN (NaN if
it is NaN for all). Guard with `math.isnan` (or `np.nan_to_num`) before averaging runs.
"""

from typing import Optional, Sequence

import numpy as np

from soundjax import checks
from soundjax.metrics.sed.common import accuracies, counts, figures, prepare_tables, results
from soundjax.metrics.sed.matching import MATCHING_TYPES, Table, match
from soundjax.types import EventLists


def event_based(reference: EventLists, estimated: EventLists, *, t_collar: float = 0.2,
                percentage_of_length: float = 0.5, evaluate_onset: bool = True,
                evaluate_offset: bool = True, event_matching_type: str = "optimal",
                labels: Optional[Sequence[str]] = None) -> dict:
  """sed_eval's event-based metrics (`EventBasedMetrics(...).results()`, flattened).

  Args:
    reference: `{filename: [(onset, offset, label), ...]}`, or a list of per-file event lists.
    estimated: the system's events in the same form; files missing from it have no detections.
    t_collar: onset (and offset) tolerance in seconds, >= 0 (sed_eval itself demands > 0).
    percentage_of_length: the offset tolerance is `max(t_collar, this * reference length)`.
    evaluate_onset: whether the onset condition applies.
    evaluate_offset: whether the offset condition applies (onset-only scores use False).
    event_matching_type: "optimal" (maximum matching, sed_eval's default) or "greedy".
    labels: the class list; default the sorted labels of all events. Every label must be in it.

  Returns:
    `{"overall": {f_measure, precision, recall, error_rate, substitution_rate, deletion_rate,
    insertion_rate, Nref, Nsys, Ntp, Nsubs, Nfp, Nfn}, "class_wise": {label: {f_measure,
    precision, recall, error_rate, deletion_rate, insertion_rate, Nref, Nsys, Ntp, Nfp, Nfn}},
    "class_wise_average": {f_measure, precision, recall, error_rate, deletion_rate,
    insertion_rate}}`. Overall `Nfp`/`Nfn` exclude substitutions (the insertions/deletions).
    No estimated events: precision and f_measure are NaN, recall 0 (see the module docstring).

  Raises:
    ValueError: a negative or non-finite `t_collar`, `percentage_of_length` outside [0, 1], both
      `evaluate_*` False, an unknown matching type, or malformed events (see `sed.common`).

  Example:
    >>> ref = {"a.wav": [(0.0, 1.0, "dog"), (2.0, 3.0, "car")]}
    >>> est = {"a.wav": [(0.1, 1.1, "dog"), (2.0, 3.0, "dog")]}
    >>> event_based(ref, est)["overall"]["f_measure"]
    0.5
  """
  t_collar = checks.nonnegative("t_collar", t_collar)
  percentage_of_length = checks.fraction("percentage_of_length", percentage_of_length)
  if not (evaluate_onset or evaluate_offset):
    raise ValueError("evaluate_onset and evaluate_offset cannot both be False")
  if event_matching_type not in MATCHING_TYPES:
    raise ValueError(f"event_matching_type must be one of {MATCHING_TYPES}, got "
                     f"{event_matching_type!r}")
  labels, n_files, ref, est = prepare_tables(reference, estimated, labels)
  n = len(labels)
  matched, nsubs = match(ref, est, n_files, t_collar=t_collar,
                         percentage_of_length=percentage_of_length, evaluate_onset=evaluate_onset,
                         evaluate_offset=evaluate_offset, event_matching_type=event_matching_type)
  nref, nsys = np.bincount(ref.label, minlength=n), np.bincount(est.label, minlength=n)
  ntp = np.bincount(ref.label[matched], minlength=n)
  nfp, nfn = nsys.sum() - ntp.sum() - nsubs, nref.sum() - ntp.sum() - nsubs
  overall = {**figures(ntp.sum(), nsys.sum(), nref.sum(), nfn, nfp, nsubs),
             **counts(Nref=nref.sum(), Nsys=nsys.sum(), Ntp=ntp.sum(), Nsubs=nsubs, Nfp=nfp,
                      Nfn=nfn)}
  class_wise = {
      label: {**figures(ntp[c], nsys[c], nref[c], nref[c] - ntp[c], nsys[c] - ntp[c]),
              **counts(Nref=nref[c], Nsys=nsys[c], Ntp=ntp[c], Nfp=nsys[c] - ntp[c],
                       Nfn=nref[c] - ntp[c])}
      for c, label in enumerate(labels)}
  return results(overall, class_wise)


def _event_roll(events: Table, n_segments: np.ndarray, n_labels: int,
                time_resolution: float) -> np.ndarray:
  """[segments, labels] activity as sed_eval's `event_list_to_event_roll` builds it, for the
  files' `n_segments` segments (the files' rolls stacked in file order).

  An event covers segments floor(onset / r) to ceil(offset / r) (exclusive), in float64 as sed_eval
  computes them, so rounding counts: onset 0.3 with r = 0.1 gives 0.3 / 0.1 = 2.9999999999999996
  and starts in segment 2, and an event of zero length on a boundary covers no segment.
  """
  # A row past each file's last segment (where an event may end), dropped at the end, keeps the
  # files apart: each file's +1s and -1s cancel by the end of that row.
  start = np.cumsum(n_segments + 1) - (n_segments + 1)
  edges = np.zeros((start.size + n_segments.sum(), n_labels), int)
  row = start[events.file]
  np.add.at(edges, (row + np.floor(events.onset / time_resolution).astype(int), events.label), 1)
  np.add.at(edges, (row + np.ceil(events.offset / time_resolution).astype(int), events.label), -1)
  return np.delete(np.cumsum(edges, axis=0), start + n_segments, axis=0) > 0


def segment_based(reference: EventLists, estimated: EventLists, *, time_resolution: float = 1.0,
                  labels: Optional[Sequence[str]] = None) -> dict:
  """sed_eval's segment-based metrics (`SegmentBasedMetrics(...).results()`, flattened).

  Each file is cut into `time_resolution` segments up to its last offset, reference or estimated
  (sed_eval's default evaluated length); a class is active in a segment that any of its events
  touches. Per segment, S = min(Nref, Nsys) - Ntp, D = max(0, Nref - Nsys), I = max(0, Nsys -
  Nref); class-wise error rates count false negatives and positives.

  Args:
    reference: `{filename: [(onset, offset, label), ...]}`, or a list of per-file event lists.
    estimated: the system's events in the same form; files missing from it have no detections.
    time_resolution: segment length in seconds, > 0.
    labels: the class list; default the sorted labels of all events. Every label must be in it.

  Returns:
    `{"overall": {f_measure, precision, recall, error_rate, substitution_rate, deletion_rate,
    insertion_rate, sensitivity, specificity, balanced_accuracy, accuracy, Nref, Nsys, Ntp, Ntn,
    Nfp, Nfn, S, D, I}, "class_wise": {label: {f_measure, precision, recall, error_rate,
    deletion_rate, insertion_rate, sensitivity, specificity, balanced_accuracy, accuracy, Nref,
    Nsys, Ntp, Ntn, Nfp, Nfn}}, "class_wise_average": {the figures' NaN-means}}`; counts are in
    segments (times classes). No active estimated segment: precision and f_measure are NaN,
    recall 0 (see the module docstring).

  Raises:
    ValueError: a `time_resolution` that is not finite and > 0, or malformed events.

  Example:
    >>> ref = {"a.wav": [(0.0, 2.0, "dog")]}
    >>> est = {"a.wav": [(0.5, 1.0, "dog")]}
    >>> segment_based(ref, est)["overall"]["recall"]
    0.5
  """
  time_resolution = checks.positive("time_resolution", time_resolution)
  labels, n_files, ref, est = prepare_tables(reference, estimated, labels)
  n = len(labels)
  length = np.zeros(n_files)  # Each file's last offset, reference or estimated (0 if none).
  for events in (ref, est):
    np.maximum.at(length, events.file, events.offset)
  n_segments = np.ceil(length / time_resolution).astype(int)
  ref_roll, est_roll = (_event_roll(e, n_segments, n, time_resolution) for e in (ref, est))
  tp, tn = (ref_roll & est_roll).sum(0), (~ref_roll & ~est_roll).sum(0)
  fp, fn = (est_roll & ~ref_roll).sum(0), (ref_roll & ~est_roll).sum(0)
  nref, nsys = ref_roll.sum(1), est_roll.sum(1)
  s = (np.minimum(nref, nsys) - (ref_roll & est_roll).sum(1)).sum()
  d, i = np.maximum(0, nref - nsys).sum(), np.maximum(0, nsys - nref).sum()
  nref, nsys = tp + fn, tp + fp
  overall = {**figures(tp.sum(), nsys.sum(), nref.sum(), d, i, s),
             **accuracies(tp.sum(), tn.sum(), fp.sum(), fn.sum()),
             **counts(Nref=nref.sum(), Nsys=nsys.sum(), Ntp=tp.sum(), Ntn=tn.sum(),
                      Nfp=fp.sum(), Nfn=fn.sum(), S=s, D=d, I=i)}
  class_wise = {
      label: {**figures(tp[c], nsys[c], nref[c], fn[c], fp[c]),
              **accuracies(tp[c], tn[c], fp[c], fn[c]),
              **counts(Nref=nref[c], Nsys=nsys[c], Ntp=tp[c], Ntn=tn[c], Nfp=fp[c], Nfn=fn[c])}
      for c, label in enumerate(labels)}
  return results(overall, class_wise)
