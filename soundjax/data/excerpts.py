"""Fixed-length excerpts of whole recordings, one per frame, labelled by their centre frame.

A builder such as `jamendo` stores whole recordings (`features [frames, bands]` and frame
`labels [frames]`). `Excerpts(builder, ...)` presents them as one example per frame: the
`length`-frame window centred on it (recordings padded with `length // 2` frames of `pad_value`
at both ends, as the published singing-voice prediction code does), normalised per band with the
training split's mean and standard deviation, labelled by the centre frame. It has the parts of a
TFDS builder that `data.batches` and `train.train` read (`name`, `info.features`,
`info.supervised_keys`, `info.splits`, `as_data_source`), so models train and are evaluated on
excerpts without each excerpt being stored (115 times the corpus, for Jamendo).
"""

import types
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data.pipeline import split_source


class ExcerptSource:
  """Random-access excerpts of one split; excerpt `i` is frame `i - offsets[r]` of recording `r`.

  Attributes:
    names: the recordings, sorted by name.
    offsets: `[recordings + 1]` index of each recording's first excerpt (and the total).
  """

  def __init__(self, recordings: Sequence[Dict[str, np.ndarray]], *, length: int,
               pad_value: float, mean: np.ndarray, std: np.ndarray, keys: Tuple[str, str, str]):
    features_key, labels_key, name_key = keys
    recordings = sorted(recordings, key=lambda r: r[name_key])
    half = length // 2
    self.length = length
    self.names = [_as_str(r[name_key]) for r in recordings]
    self._labels = [np.asarray(r[labels_key], np.int32) for r in recordings]
    self._padded = [((np.pad(np.asarray(r[features_key], np.float32), ((half, length - 1 - half),
                                                                       (0, 0)),
                             constant_values=pad_value) - mean) / std).astype(np.float32)
                    for r in recordings]
    self.offsets = np.cumsum([0] + [len(labels) for labels in self._labels])

  def __len__(self) -> int:
    return int(self.offsets[-1])

  def __getitem__(self, index: int) -> Dict[str, np.ndarray]:
    if not 0 <= index < len(self):
      raise IndexError(f"excerpt {index} out of range [0, {len(self)})")
    recording = int(np.searchsorted(self.offsets, index, side="right")) - 1
    frame = int(index - self.offsets[recording])
    return {"excerpt": self._padded[recording][frame:frame + self.length],
            "label": self._labels[recording][frame]}

  def blocks(self, frames_per_recording: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Excerpt indices of a contiguous block from the middle of each recording.

    Args:
      frames_per_recording: block length; None takes every frame.

    Returns:
      `(indices, recording)`: the excerpt indices in time order and each one's recording number,
      so that per-recording post-processing (median filtering) sees contiguous frames.
    """
    indices, recordings = [], []
    for number, (start, stop) in enumerate(zip(self.offsets[:-1], self.offsets[1:])):
      size = stop - start if frames_per_recording is None else min(frames_per_recording,
                                                                   stop - start)
      first = start + (stop - start - size) // 2
      indices.append(np.arange(first, first + size))
      recordings.append(np.full(size, number))
    return np.concatenate(indices), np.concatenate(recordings)


def _as_str(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


class Excerpts:
  """A prepared recordings builder seen as a dataset of normalised excerpts.

  Example:
    >>> builder = Excerpts(data.prepare("jamendo", data_dir=..., manual_dir=...), length=115,
    ...                    pad_value=np.log(1e-7), class_names=("nosing", "sing"))
    >>> train.train(config, workdir, builder=builder)
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, *, length: int, pad_value: float,
               class_names: Sequence[str], statistics_split: str = "train",
               keys: Tuple[str, str, str] = ("features", "labels", "song")):
    checks.integer("length", length)
    self.name = f"{builder.name}_excerpts"
    self.length, self.pad_value, self.keys = length, pad_value, keys
    self._builder = builder
    self._sources = {}
    self.info = types.SimpleNamespace(
        features={"label": tfds.features.ClassLabel(names=list(class_names))},
        supervised_keys=("excerpt", "label"), splits=builder.info.splits)
    self.mean, self.std = self._band_statistics(statistics_split)

  def _band_statistics(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation over every frame of `split` (float64 sums)."""
    total = total_sq = count = 0
    for record in split_source(self._builder, split):
      features = np.asarray(record[self.keys[0]], np.float64)
      total, total_sq = total + features.sum(0), total_sq + np.square(features).sum(0)
      count += len(features)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-8).astype(np.float32)

  def as_data_source(self, split: str) -> ExcerptSource:
    """The excerpts of one split (recordings loaded into memory on first use)."""
    if split not in self._sources:
      self._sources[split] = ExcerptSource(
          list(split_source(self._builder, split)), length=self.length, pad_value=self.pad_value,
          mean=self.mean, std=self.std, keys=self.keys)
    return self._sources[split]
