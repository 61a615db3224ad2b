"""Post-processing of frame probabilities into events, as the DCASE task 4 recipes do.

A system's `[frames, classes]` probabilities are smoothed with a per-class `median_filter`,
binarised with a global or per-class threshold (`choose_thresholds` picks it on the validation
split by event-based F), decoded into `(onset, offset, label)` events (`probabilities_to_events`,
through `frames_to_events`) and written as DCASE TSV (`write_events_tsv`). `events_to_roll` turns
events back into a frame roll. Host-side numpy: these run once per file, outside traced code.
"""

import math
import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from soundjax import checks
from soundjax.metrics.sed.common import prepare
from soundjax.metrics.sed.decoding import frames_to_events
from soundjax.metrics.sed.scoring import event_based
from soundjax.types import Event, EventLists

TSV_HEADER = ("filename", "onset", "offset", "event_label")


def _matrix(probabilities, n_classes: Optional[int] = None) -> np.ndarray:
  probabilities = np.asarray(probabilities)
  if probabilities.ndim != 2 or (n_classes is not None and probabilities.shape[1] != n_classes):
    classes = "classes" if n_classes is None else f"{n_classes} classes"
    raise ValueError(f"probabilities must be [frames, {classes}], got {probabilities.shape}")
  if np.isnan(probabilities.astype(np.float64)).any():
    raise ValueError("probabilities must not contain NaN")
  return probabilities


def median_filter(probabilities: np.ndarray, window: Union[int, Sequence[int]]) -> np.ndarray:
  """Each class's running median over `window` frames centred on each frame.

  The edges mirror the signal about its edge samples (`c b a | a b c | c b a`, repeated when the
  window is longer than the signal), which is `scipy.ndimage.median_filter(x, size=(window, 1))`'s
  default ("reflect") in the DCASE baselines. Windows are odd, so the window is centred and the
  median is one of its values.

  Args:
    probabilities: [frames, classes] scores.
    window: odd window length in frames, one for all classes or one per class (1 leaves a class
      unchanged).

  Returns:
    The filtered [frames, classes] array, in the input's dtype.

  Example:
    >>> median_filter(np.array([[0.0], [1.0], [0.0], [0.0]]), 3)[:, 0]
    array([0., 0., 0., 0.])
  """
  probabilities = _matrix(probabilities)
  frames, n = probabilities.shape
  windows = [window] * n if checks.is_integer(window) else list(window)
  if len(windows) != n or not all(checks.is_integer(w, 1) and w % 2 for w in windows):
    raise ValueError(f"window must be an odd integer >= 1 or one per class ({n}), got {window!r}")
  result = probabilities.copy()
  if frames == 0:
    return result
  for w in sorted(set(windows)):
    columns = [c for c in range(n) if windows[c] == w]
    padded = np.pad(probabilities[:, columns], ((w // 2, w // 2), (0, 0)), mode="symmetric")
    views = np.lib.stride_tricks.sliding_window_view(padded, w, axis=0)  # [frames, cols, w]
    result[:, columns] = np.partition(views, w // 2, axis=-1)[..., w // 2]
  return result


def probabilities_to_events(probabilities: np.ndarray, *, hop_seconds: float,
                            labels: Sequence[str], threshold: Union[float, Sequence[float]] = 0.5,
                            min_duration: float = 0.0, min_gap: float = 0.0) -> List[Event]:
  """`frames_to_events` with one threshold for all classes or one per class (column).

  Args:
    probabilities: [frames, classes] scores.
    hop_seconds: seconds between frame starts.
    labels: one label per column.
    threshold: a class is active in frames scoring `>= threshold`; a float or one per class.
    min_duration: shortest event kept, seconds.
    min_gap: same-class gaps up to this long are closed, seconds.

  Returns:
    The events sorted by onset, then column.

  Example:
    >>> probabilities_to_events(np.array([[0.6, 0.6], [0.2, 0.9]]), hop_seconds=0.5,
    ...                         labels=["dog", "cat"], threshold=[0.5, 0.8])
    [(0.0, 0.5, 'dog'), (0.5, 1.0, 'cat')]
  """
  labels = list(labels)
  probabilities = _matrix(probabilities, len(labels))
  if checks.is_number(threshold):
    activity, threshold = probabilities, checks.finite("threshold", threshold)
  else:
    threshold = np.asarray([checks.finite("threshold entry", t) for t in threshold])
    if threshold.shape != (len(labels),):
      raise ValueError(f"threshold must be a number or one per class ({len(labels)}), got "
                       f"{threshold.size}")
    # Binarised per class here; frames_to_events then keeps the 1s (>= 0.5).
    activity, threshold = (probabilities >= threshold).astype(np.float32), 0.5
  return frames_to_events(activity, hop_seconds=hop_seconds, labels=labels, threshold=threshold,
                          min_duration=min_duration, min_gap=min_gap)


def choose_thresholds(probabilities_per_file, reference_events: EventLists, *, hop_seconds: float,
                      labels: Sequence[str], grid: Sequence[float], per_class: bool = False,
                      **event_based_kwargs) -> Union[float, np.ndarray]:
  """The grid threshold(s) that maximise event-based F on a validation split.

  Each grid value decodes every file (`frames_to_events`) and scores it with `event_based`; a
  global threshold maximises the overall F, per-class ones each class's F (a class's event-based
  counts depend only on its own events, so the classes are chosen independently). Ties go to the
  smallest threshold; a class whose F is NaN everywhere (no reference events) gets the largest.

  Args:
    probabilities_per_file: `{filename: [frames, classes]}`, or a list of per-file arrays.
    reference_events: the reference in the same form; missing files have no events.
    hop_seconds: seconds between frame starts.
    labels: one label per column.
    grid: candidate thresholds, strictly increasing.
    per_class: one threshold per class instead of one for all.
    **event_based_kwargs: `event_based`'s options (`t_collar`, `percentage_of_length`, ...).

  Returns:
    A float, or a [classes] array when `per_class`.

  Example:
    >>> probs = {"a.wav": np.array([[0.9], [0.4], [0.1]])}
    >>> choose_thresholds(probs, {"a.wav": [(0.0, 1.0, "dog")]}, hop_seconds=0.5,
    ...                   labels=["dog"], grid=[0.3, 0.5])
    0.3
  """
  labels, grid = list(labels), checks.increasing("grid", grid)
  keyed = lambda x: dict(x) if isinstance(x, Mapping) else dict(enumerate(x))
  probabilities = {name: _matrix(p, len(labels))
                   for name, p in keyed(probabilities_per_file).items()}
  reference = keyed(reference_events)
  extra = [name for name in reference if name not in probabilities]
  if extra:
    raise ValueError(f"reference_events has files without probabilities: {extra}")
  reference = {name: reference.get(name, ()) for name in probabilities}
  scores = []
  for threshold in grid:
    estimated = {name: frames_to_events(p, hop_seconds=hop_seconds, labels=labels,
                                        threshold=threshold) for name, p in probabilities.items()}
    result = event_based(reference, estimated, labels=labels, **event_based_kwargs)
    scores.append([result["overall"]["f_measure"]] if not per_class else
                  [result["class_wise"][label]["f_measure"] for label in labels])
  scores = np.array(scores)  # [grid, 1 or classes]
  best = np.where(np.isnan(scores).all(0), len(grid) - 1,
                  np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=0))
  chosen = np.array(grid)[best]
  return chosen if per_class else float(chosen[0])


def merge_overlapping(events: Sequence[Event]) -> List[Event]:
  """One file's events with same-class events that overlap or touch merged into one.

  psds_eval refuses a reference with overlapping events of one class, which scaper soundscapes
  (URBAN-SED's) can hold; merged, they cover the same active frames.

  Returns:
    The merged events, sorted by label, then onset.

  Example:
    >>> merge_overlapping([(0.0, 1.0, "dog"), (0.5, 2.0, "dog"), (0.5, 0.7, "cat")])
    [(0.5, 0.7, 'cat'), (0.0, 2.0, 'dog')]
  """
  merged: List[Event] = []
  for onset, offset, label in sorted(events, key=lambda e: (e[2], e[0], e[1])):
    if merged and merged[-1][2] == label and onset <= merged[-1][1]:
      merged[-1] = (merged[-1][0], max(merged[-1][1], offset), label)
    else:
      merged.append((onset, offset, label))
  return merged


def events_to_roll(events: Sequence[Event], *, num_frames: int, hop_seconds: float,
                   labels: Sequence[str]) -> np.ndarray:
  """A [num_frames, classes] bool roll: frame t is active where an event overlaps it.

  Frame t covers `[t * hop, (t + 1) * hop)` and is active for a class when one of its events
  overlaps it by a positive length (`t * hop < offset` and `onset < (t + 1) * hop`), so a
  zero-length event marks a frame only strictly inside it. Frame edges are the products `t *
  hop_seconds`, as `frames_to_events` computes onsets, so its events round-trip exactly.

  Args:
    events: one file's `(onset, offset, label)` events.
    num_frames: frames in the roll; events past the end are cut.
    hop_seconds: seconds between frame starts.
    labels: one label per column; every event's label must be in it.

  Returns:
    The bool roll.

  Example:
    >>> events_to_roll([(0.5, 1.2, "dog")], num_frames=4, hop_seconds=0.5, labels=["dog"])[:, 0]
    array([False,  True,  True, False])
  """
  num_frames = checks.integer("num_frames", num_frames, minimum=0)
  hop_seconds = checks.positive("hop_seconds", hop_seconds)
  labels, [(checked, _)] = prepare([events], [], labels)
  edges = np.arange(num_frames + 1) * hop_seconds
  start = np.searchsorted(edges, checked.onset, side="right") - 1  # First edge after the onset.
  stop = np.minimum(np.searchsorted(edges, checked.offset, side="left"), num_frames)
  keep = start < stop
  change = np.zeros((num_frames + 1, len(labels)), int)
  np.add.at(change, (start[keep], checked.label[keep]), 1)
  np.add.at(change, (stop[keep], checked.label[keep]), -1)
  return np.cumsum(change, axis=0)[:-1] > 0


def write_events_tsv(path: Union[str, os.PathLike], events: Dict[str, Sequence[Event]], *,
                     decimals: Optional[int] = None) -> None:
  """Writes `{filename: events}` as DCASE TSV: a header, then `filename onset offset label` rows.

  Files without events have no rows (DCASE lists every file in a separate durations file).

  Args:
    path: the file to write.
    events: `{filename: [(onset, offset, label), ...]}`, written in order.
    decimals: digits after the point; None writes each time's shortest exact form, so
      `read_events_tsv` gives back the same floats.

  Example:
    >>> write_events_tsv("predictions.tsv", {"a.wav": [(0.5, 1.25, "dog")]})
  """
  if not isinstance(events, dict) or not all(isinstance(name, str) for name in events):
    raise ValueError("events must map filenames (str) to event lists")
  decimals = checks.optional_integer("decimals", decimals, minimum=0)
  _, files = prepare(events, {}, None)  # Checks every event.
  fields = [name for name in events] + [e[2] for lists in events.values() for e in lists]
  if any(set(field) & {"\t", "\n", "\r"} or not field for field in fields):
    raise ValueError("filenames and labels must be non-empty and free of tabs and newlines")
  number = repr if decimals is None else (lambda x: f"{x:.{decimals}f}")
  lines = ["\t".join(TSV_HEADER)]
  for (name, lists), (checked, _) in zip(events.items(), files):
    lines += [f"{name}\t{number(float(on))}\t{number(float(off))}\t{e[2]}"
              for on, off, e in zip(checked.onset, checked.offset, lists)]
  with open(path, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(lines) + "\n")


def read_events_tsv(path: Union[str, os.PathLike]) -> Dict[str, List[Event]]:
  """Reads a DCASE TSV (header with filename, onset, offset, event_label; other columns ignored).

  A row whose onset, offset and label are empty lists a file without events.

  Args:
    path: the file to read.

  Returns:
    `{filename: [(onset, offset, label), ...]}` in the file's order.

  Example:
    >>> read_events_tsv("predictions.tsv")
    {'a.wav': [(0.5, 1.25, 'dog')]}
  """
  with open(path, encoding="utf-8") as f:
    rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
  if not rows or not set(TSV_HEADER) <= set(rows[0]):
    raise ValueError(f"{path}: the header must name the columns {TSV_HEADER}")
  columns = [rows[0].index(name) for name in TSV_HEADER]
  events: Dict[str, List[Event]] = {}
  for number, row in enumerate(rows[1:], start=2):
    if len(row) < len(rows[0]):
      row = row + [""] * (len(rows[0]) - len(row))  # Trailing empty fields may be cut.
    name, onset, offset, label = (row[c] for c in columns)
    events.setdefault(name, [])
    if onset == offset == label == "":
      continue
    try:
      event = (float(onset), float(offset), label)
    except ValueError:
      raise ValueError(f"{path}, line {number}: onset and offset must be numbers") from None
    if not all(map(math.isfinite, event[:2])):
      raise ValueError(f"{path}, line {number}: onset and offset must be finite")
    events[name].append(event)
  prepare(events, {}, None)  # Checks every event.
  return events
