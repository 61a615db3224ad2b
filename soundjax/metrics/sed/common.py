"""Shared parts of the sed_eval metrics: checked per-file event arrays and sed_eval's formulas.

The formulas repeat sed_eval 0.2.1's `metric.py` float operation by float operation, quirks
included: every rate and accuracy divides by its count plus `eps = numpy.spacing(1)` (so a class
with no reference events but some estimates has an insertion rate near 4.5e15), precision and
recall are NaN on a zero denominator, and the class-wise averages are NaN-means over classes.
"""

import math
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from soundjax.metrics.sed.matching import Events, Table
from soundjax.types import Event, EventLists

EPS = float(np.spacing(1))


def by_file(values: Any, name: str, what: str = "event lists") -> dict:
  """`{filename: value}` from a mapping, or from a per-file list (keys 0, 1, ...)."""
  if isinstance(values, Mapping):
    return dict(values)
  if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
    raise ValueError(f"{name} must map filenames to {what} or be a per-file list of them, got "
                     f"{type(values).__name__}")
  return dict(enumerate(values))


def _check_event(event, where: str) -> Event:
  if not isinstance(event, Sequence) or isinstance(event, str) or len(event) != 3:
    raise ValueError(f"{where}: an event must be (onset, offset, label), got {event!r}")
  onset, offset, label = event
  try:
    onset, offset = float(onset), float(offset)
  except (TypeError, ValueError):
    raise ValueError(f"{where}: onset and offset must be numbers, got {event!r}") from None
  if not (math.isfinite(onset) and math.isfinite(offset)):
    raise ValueError(f"{where}: onset and offset must be finite (not NaN), got {event!r}")
  if onset < 0 or onset > offset:
    raise ValueError(f"{where}: need 0 <= onset <= offset, got {event!r}")
  if not isinstance(label, str) or not label:
    raise ValueError(f"{where}: the label must be a non-empty string, got {label!r}")
  return onset, offset, label


def _paired_files(reference: EventLists,
                  estimated: EventLists) -> Tuple[list, List[Tuple[list, list]]]:
  """The reference files' names and (reference, estimated) event lists; missing estimates are []."""
  reference, estimated = by_file(reference, "reference"), by_file(estimated, "estimated")
  extra = [name for name in estimated if name not in reference]
  if extra:
    raise ValueError(f"estimated has files that are not in reference: {extra}")
  return list(reference), [(list(reference[name]), list(estimated.get(name, ())))
                           for name in reference]


def _checked_files(names: list, files: List[Tuple[list, list]]) -> List[Tuple[list, list]]:
  """The events of `files`, each checked one by one; raises on the first malformed one."""
  return [tuple([_check_event(e, f"{side} file {name!r}, event {i}") for i, e in enumerate(lists)]
                for side, lists in (("reference", pair[0]), ("estimated", pair[1])))
          for name, pair in zip(names, files)]


def _label_list(used: set, labels: Optional[Sequence[str]]) -> List[str]:
  if labels is None:
    return sorted(used)
  labels = list(labels)
  if len(set(labels)) != len(labels):
    raise ValueError(f"labels must be unique, got {labels}")
  unknown = sorted(used - set(labels))
  if unknown:
    raise ValueError(f"events have labels missing from labels: {unknown}")
  return labels


def _fast_tables(files: List[Tuple[list, list]], labels: Optional[Sequence[str]]):
  """`(labels, reference, estimated)` tables when every event is a well-formed tuple or list.

  One numpy conversion for all events instead of a Python check per event (the per-event checks
  were most of the scoring time on 2,000 clips). Returns None on anything unusual (another event
  type, a conversion that fails, a time or label `_check_event` would reject, a label outside
  `labels`), so that the per-event checks decide and word the error.
  """
  sides = []
  for side in range(2):
    lists = [pair[side] for pair in files]
    events = [e for events in lists for e in events]
    if not set(map(type, events)) <= {tuple, list} or not set(map(len, events)) <= {3}:
      return None
    onsets, offsets, names = zip(*events) if events else ((), (), ())
    try:
      onset, offset = np.array(onsets, np.float64), np.array(offsets, np.float64)
    except (TypeError, ValueError):
      return None
    if onset.shape != (len(events),) or offset.shape != onset.shape:
      return None
    file = np.repeat(np.arange(len(lists)), list(map(len, lists)))
    sides.append((file, onset, offset, names))
  times = np.concatenate([array for side in sides for array in side[1:3]])
  onsets = np.concatenate([side[1] for side in sides])
  if not (np.isfinite(times).all() and (onsets >= 0).all()
          and all((side[1] <= side[2]).all() for side in sides)):
    return None
  try:
    used = {name for side in sides for name in side[3]}
  except TypeError:  # An unhashable label.
    return None
  if not all(type(name) is str and name for name in used):
    return None
  if labels is not None and not used <= set(labels):
    return None
  labels = _label_list(used, labels)
  index = {label: i for i, label in enumerate(labels)}
  return labels, *(Table(file, onset, offset, np.array([index[n] for n in names], np.int64))
                   for file, onset, offset, names in sides)


def prepare_tables(reference: EventLists, estimated: EventLists,
                   labels: Optional[Sequence[str]]) -> Tuple[List[str], int, Table, Table]:
  """Checks the inputs; returns the class list, the number of reference files and the events.

  Raises:
    ValueError: on a malformed event, a time that is negative, NaN or infinite, an onset after
      its offset, an estimated file absent from reference, or a label outside `labels`.
  """
  names, files = _paired_files(reference, estimated)
  labels = None if labels is None else list(labels)  # Read once, even from an iterator.
  fast = _fast_tables(files, labels)
  if fast is not None:
    return fast[0], len(files), fast[1], fast[2]
  files = _checked_files(names, files)
  labels = _label_list({event[2] for pair in files for side in pair for event in side}, labels)
  index = {label: i for i, label in enumerate(labels)}
  tables = []
  for side in range(2):
    events = [e for pair in files for e in pair[side]]
    tables.append(Table(np.repeat(np.arange(len(files)), [len(pair[side]) for pair in files]),
                        np.array([e[0] for e in events], np.float64),
                        np.array([e[1] for e in events], np.float64),
                        np.array([index[e[2]] for e in events], np.int64)))
  return labels, len(files), tables[0], tables[1]


def split(table: Table, n_files: int) -> List[Events]:
  """Each file's events of `table`."""
  bounds = np.searchsorted(table.file, np.arange(1, n_files))
  return [Events(*parts) for parts in zip(*(np.split(column, bounds) for column in table[1:]))]


def prepare(reference: EventLists, estimated: EventLists,
            labels: Optional[Sequence[str]]) -> Tuple[List[str], List[Tuple[Events, Events]]]:
  """`prepare_tables`, per file: the class list and each reference file's event arrays."""
  labels, n_files, ref, est = prepare_tables(reference, estimated, labels)
  return labels, list(zip(split(ref, n_files), split(est, n_files)))


def figures(ntp: int, nsys: int, nref: int, deletions: int, insertions: int,
            substitutions: Optional[int] = None) -> Dict[str, float]:
  """F-measure, precision, recall and error rates from counts; class-wise ones have no S."""
  ntp, nsys, nref, deletions, insertions = map(int, (ntp, nsys, nref, deletions, insertions))
  precision = ntp / nsys if nsys else math.nan
  recall = ntp / nref if nref else math.nan
  f_measure = (0.0 if precision == 0 and recall == 0
               else 2.0 * precision * recall / (precision + recall))
  deletion_rate, insertion_rate = deletions / (nref + EPS), insertions / (nref + EPS)
  result = {"f_measure": f_measure, "precision": precision, "recall": recall}
  if substitutions is None:
    result["error_rate"] = 0.0 + deletion_rate + insertion_rate
  else:
    result["substitution_rate"] = int(substitutions) / (nref + EPS)
    result["error_rate"] = result["substitution_rate"] + deletion_rate + insertion_rate
  result.update(deletion_rate=deletion_rate, insertion_rate=insertion_rate)
  return result


def accuracies(ntp: int, ntn: int, nfp: int, nfn: int) -> Dict[str, float]:
  """Sensitivity, specificity, balanced accuracy (factor 0.5) and accuracy from counts."""
  ntp, ntn, nfp, nfn = map(int, (ntp, ntn, nfp, nfn))
  sensitivity = ntp / (ntp + nfn + EPS)
  specificity = ntn / (ntn + nfp + EPS)
  return {"sensitivity": sensitivity, "specificity": specificity,
          "balanced_accuracy": 0.5 * sensitivity + 0.5 * specificity,
          "accuracy": (ntp + ntn) / (ntp + ntn + nfn + nfp + EPS)}


def counts(**values) -> Dict[str, int]:
  """Counts as Python ints, under sed_eval's accumulator names (Nref, Nsys, Ntp, ...)."""
  return {k: int(v) for k, v in values.items()}


def results(overall: dict, class_wise: Dict[str, dict]) -> dict:
  """The results dict, with the class-wise NaN-mean of every figure (count keys start with N)."""
  names = [k for k in next(iter(class_wise.values()), {}) if not k.startswith("N")]
  with warnings.catch_warnings():  # A figure that is NaN for every class averages to NaN.
    warnings.simplefilter("ignore", RuntimeWarning)
    average = {k: float(np.nanmean([c[k] for c in class_wise.values()])) for k in names}
  return {"overall": overall, "class_wise": class_wise, "class_wise_average": average}
