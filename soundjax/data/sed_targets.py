"""Strong labels `(onset, offset, label)` as frame-wise multi-label targets, and as event lists.

The frame convention is that of `soundjax.metrics.sed.frames_to_events`: frame `t` covers the
time span `[t / frame_rate, (t + 1) / frame_rate)`, an event covers `[onset, offset)`, and the
event's class is active (target 1) in every frame the event overlaps. So frame-aligned events
survive a round trip through targets and `frames_to_events` unchanged.
"""

from typing import Dict, List, Sequence

import numpy as np

from soundjax import checks
from soundjax.types import Event

# An event edge this close (in frames) to a frame edge counts as on it, so times stored as
# float32 (0.3 is 0.30000001) do not spill into the next frame. 1e-4 frames is 2 us at 50 fps.
EDGE_TOLERANCE = 1e-4


def events_to_frame_targets(onsets: Sequence[float], offsets: Sequence[float],
                            labels: Sequence[int], *, num_frames: int, frame_rate: float,
                            num_classes: int) -> np.ndarray:
  """Frame-wise targets of one clip's events (see the module docstring for the convention).

  A zero-length event marks the frame holding its onset; events past the last frame are cut.

  Args:
    onsets: `[events]` seconds, >= 0.
    offsets: `[events]` seconds, >= the onsets.
    labels: `[events]` class indices in `[0, num_classes)`.
    num_frames: frames in the clip's target matrix.
    frame_rate: frames per second (50 for a 20 ms hop).
    num_classes: columns of the target matrix.

  Returns:
    float32 `[num_frames, num_classes]` of 0 and 1.

  Example:
    >>> events_to_frame_targets([0.5], [1.0], [1], num_frames=4, frame_rate=2, num_classes=2)
    array([[0., 0.],
           [0., 1.],
           [0., 0.],
           [0., 0.]], dtype=float32)
  """
  num_frames = checks.integer("num_frames", num_frames, 0)
  frame_rate = checks.positive("frame_rate", frame_rate)
  num_classes = checks.integer("num_classes", num_classes, 1)
  onsets, offsets = np.asarray(onsets, np.float64), np.asarray(offsets, np.float64)
  labels = np.asarray(labels)
  if not onsets.ndim == offsets.ndim == labels.ndim == 1 or \
      not onsets.shape == offsets.shape == labels.shape:
    raise ValueError(f"onsets, offsets and labels must be 1-D of one length, got shapes "
                     f"{onsets.shape}, {offsets.shape}, {labels.shape}")
  if not (np.all(np.isfinite(onsets)) and np.all(np.isfinite(offsets))):
    raise ValueError("onsets and offsets must be finite")
  if np.any(onsets < 0) or np.any(offsets < onsets):
    raise ValueError(f"events must have 0 <= onset <= offset, got onsets {onsets} and offsets "
                     f"{offsets}")
  if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                      or labels.max() >= num_classes):
    raise ValueError(f"labels must be integers in [0, {num_classes}), got {labels}")
  first = np.floor(onsets * frame_rate + EDGE_TOLERANCE)
  last = np.maximum(np.ceil(offsets * frame_rate - EDGE_TOLERANCE), first + 1)
  frames = np.arange(num_frames)
  active = (frames >= first[:, None]) & (frames < last[:, None])  # [events, frames]
  one_hot = labels[:, None] == np.arange(num_classes)  # [events, classes]
  return (active.T.astype(np.float32) @ one_hot.astype(np.float32) > 0).astype(np.float32)


def record_events(record: Dict[str, np.ndarray], class_names: Sequence[str]) -> List[Event]:
  """A stored example's events as `(onset, offset, class name)` tuples, for the SED metrics.

  Args:
    record: an example of `synth_soundscapes` or `urban_sed` (`onsets`, `offsets`, `labels`).
    class_names: the builder's label names (`info.features["labels"].feature.names`).
  """
  return [(float(onset), float(offset), class_names[int(label)]) for onset, offset, label
          in zip(record["onsets"], record["offsets"], record["labels"])]
