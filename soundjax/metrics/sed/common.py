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

from soundjax.metrics.sed.matching import Events
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


def _paired_files(reference: EventLists, estimated: EventLists) -> List[Tuple[list, list]]:
  """Checked (reference, estimated) event lists per reference file; missing estimates are empty."""
  reference, estimated = by_file(reference, "reference"), by_file(estimated, "estimated")
  extra = [name for name in estimated if name not in reference]
  if extra:
    raise ValueError(f"estimated has files that are not in reference: {extra}")
  return [tuple([_check_event(e, f"{side} file {name!r}, event {i}") for i, e in enumerate(lists)]
                for side, lists in (("reference", reference[name]),
                                    ("estimated", estimated.get(name, ()))))
          for name in reference]


def _label_list(files: List[Tuple[list, list]], labels: Optional[Sequence[str]]) -> List[str]:
  used = {event[2] for pair in files for side in pair for event in side}
  if labels is None:
    return sorted(used)
  labels = list(labels)
  if len(set(labels)) != len(labels):
    raise ValueError(f"labels must be unique, got {labels}")
  unknown = sorted(used - set(labels))
  if unknown:
    raise ValueError(f"events have labels missing from labels: {unknown}")
  return labels


def _encode(events: list, index: Dict[str, int]) -> Events:
  return Events(np.array([e[0] for e in events], np.float64),
                np.array([e[1] for e in events], np.float64),
                np.array([index[e[2]] for e in events], np.int64))


def prepare(reference: EventLists, estimated: EventLists,
            labels: Optional[Sequence[str]]) -> Tuple[List[str], List[Tuple[Events, Events]]]:
  """Checks the inputs and returns the class list and each reference file's event arrays.

  Raises:
    ValueError: on a malformed event, a time that is negative, NaN or infinite, an onset after
      its offset, an estimated file absent from reference, or a label outside `labels`.
  """
  files = _paired_files(reference, estimated)
  labels = _label_list(files, labels)
  index = {label: i for i, label in enumerate(labels)}
  return labels, [(_encode(ref, index), _encode(est, index)) for ref, est in files]


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
