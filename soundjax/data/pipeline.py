"""From a dataset name to grain batches of numpy dicts `{"x": [batch, ...], "y": [batch, ...]}`.

Datasets are TFDS builders prepared as array_record and read with random access (no TensorFlow).
A training stream is a `grain.MapDataset`, so batch `i` is a pure function of `(seed, i)`: a run
resumed at step `i` sees exactly the batches an uninterrupted run would.
"""

import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import grain
import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio
from soundjax.data.builders import BUILDERS
from soundjax.data.sed_targets import events_to_frame_targets


def prepare(name: str, *, data_dir: str, manual_dir: Optional[str] = None,
            **settings: Any) -> tfds.core.DatasetBuilder:
  """Builds dataset `name` into `data_dir` if it is not there yet, and returns its builder.

  Args:
    name: a key of `soundjax.data.builders.BUILDERS`, e.g. "synth_events".
    data_dir: where TFDS keeps prepared datasets.
    manual_dir: where a real dataset's downloaded files are (default `<data_dir>/downloads/manual`).
    **settings: the builder's config fields, e.g. `sample_rate=16000` for synth_events.

  Raises:
    ValueError: unknown name or invalid settings.
    FileNotFoundError: a real dataset's files are missing; the message says what to put where.
  """
  checks.one_of("dataset", name, BUILDERS)
  builder_cls, make_config = BUILDERS[name]
  if settings and make_config is None:
    raise ValueError(f"Dataset {name!r} takes no settings, got {sorted(settings)}.")
  kwargs = {}
  if make_config is not None:
    config = make_config(**settings)
    # TFDS refuses a custom config named like a predefined one: pass the predefined one by name.
    predefined = {known.name for known in builder_cls.BUILDER_CONFIGS}
    kwargs["config"] = config.name if config.name in predefined else config
  builder = builder_cls(data_dir=data_dir, file_format="array_record", **kwargs)
  if not builder.is_prepared():
    manual_dir = manual_dir or os.path.join(data_dir, "downloads", "manual")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def prepare_config(config: Any) -> tfds.core.DatasetBuilder:
  """`prepare` for a data config (`name`, `data_dir`, optional `manual_dir` and `settings`).

  Example:
    >>> builder = prepare_config(config.data)  # configs/common.py's data_config(...)
  """
  return prepare(config.name, data_dir=config.data_dir, manual_dir=config.get("manual_dir"),
                 **config.get("settings", {}))


def strongly_labelled(builder: tfds.core.DatasetBuilder) -> bool:
  """Whether the builder's examples carry events (a `Sequence` of labels), not one class."""
  feature = builder.info.features[builder.info.supervised_keys[1]]
  return isinstance(feature, tfds.features.Sequence)


def _several(label) -> bool:
  """Whether `label` names several class labels (one per head), not one."""
  return isinstance(label, (list, tuple))


def label_key(builder: tfds.core.DatasetBuilder, label: Optional[str] = None) -> str:
  """The feature `y` is read from: `label`, or the builder's supervised label when None.

  Raises:
    ValueError: `label` is not one of the builder's class-label features.
  """
  if label is None:
    return builder.info.supervised_keys[1]
  names = sorted(name for name, feature in builder.info.features.items()
                 if isinstance(feature, tfds.features.ClassLabel))
  if label not in names:
    raise ValueError(f"{builder.name} has no class label {label!r}; its labels are {names}"
                     f"{checks.closest(label, names)}")
  return label


def num_classes(builder: tfds.core.DatasetBuilder,
                label: Optional[Union[str, Sequence[str]]] = None) -> Union[int, Tuple[int, ...]]:
  """Number of classes of the label feature (see `label_key`; or of each label of a list of
  events); for a sequence of labels (the heads of a multi-head model), a tuple of them."""
  if _several(label):
    return tuple(num_classes(builder, name) for name in label)
  feature = builder.info.features[label_key(builder, label)]
  if label is None and strongly_labelled(builder):  # One class per event.
    feature = feature.feature
  return feature.num_classes


def split_source(builder: tfds.core.DatasetBuilder, split: str):
  """Random-access source of one split's records."""
  if split not in builder.info.splits:
    raise ValueError(f"{builder.name} has no split {split!r}; it has {list(builder.info.splits)}.")
  return builder.as_data_source(split=split)


class _Subset:
  """The records of a random-access source at `indices`, itself random access."""

  def __init__(self, source, indices: np.ndarray):
    self._source, self._indices = source, indices

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, index: int):
    return self._source[int(self._indices[index])]


def _kept(builder: tfds.core.DatasetBuilder, split: str, source,
          exclude: Optional[Dict[str, Sequence[int]]]):
  """`source` without the records whose feature value is in `exclude[feature]`."""
  if not exclude:
    return source
  for feature in exclude:
    label_key(builder, feature)
  dropped = {feature: set(int(v) for v in values) for feature, values in exclude.items()}
  keep = np.array([i for i in range(len(source))
                   if not any(int(source[i][f]) in v for f, v in dropped.items())], np.int64)
  if not keep.size:
    raise ValueError(f"exclude={dict(exclude)} leaves no record of {builder.name}'s {split} split")
  return _Subset(source, keep)


def _to_example(builder: tfds.core.DatasetBuilder, num_samples: Optional[int],
                frame_targets: Optional[Dict[str, Any]], label: Optional[str] = None):
  x_key = builder.info.supervised_keys[0]
  if _several(label):
    keys = [label_key(builder, name) for name in label]
    if not keys:
      raise ValueError("label must name at least one class label, got an empty sequence")

    def label(record):
      return np.array([record[key] for key in keys], np.int32)
  elif label is None and strongly_labelled(builder):
    if not frame_targets:
      raise ValueError(f"{builder.name} labels events, not clips: pass frame_targets="
                       "{'num_frames': ..., 'frame_rate': ...} to batch them as frame targets")
    classes = num_classes(builder)
    frame_rate = checks.positive("frame_targets.frame_rate", frame_targets["frame_rate"])
    frames = checks.integer("frame_targets.num_frames", frame_targets["num_frames"])

    def label(record):
      return events_to_frame_targets(record["onsets"], record["offsets"], record["labels"],
                                     num_frames=frames, frame_rate=frame_rate,
                                     num_classes=classes)
  else:
    y_key = label_key(builder, label)

    def label(record):
      return np.asarray(record[y_key], np.int32)

  def to_example(record: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    x = np.asarray(record[x_key], np.float32)
    if num_samples is not None:
      x = audio.fit_length(x, num_samples)
    return {"x": x, "y": label(record)}

  return to_example


def batches(builder: tfds.core.DatasetBuilder, split: str, *, batch_size: int, seed: int = 0,
            shuffle: bool = False, num_epochs: Optional[int] = 1,
            num_samples: Optional[int] = None, drop_remainder: bool = False,
            frame_targets: Optional[Dict[str, Any]] = None,
            label: Optional[Union[str, Sequence[str]]] = None,
            exclude: Optional[Dict[str, Sequence[int]]] = None,
            shard: Optional[grain.sharding.ShardOptions] = None) -> grain.MapDataset:
  """Batches of one split as a random-access `grain.MapDataset`.

  Args:
    builder: a prepared builder (see `prepare`).
    split: "train" or "test".
    batch_size: examples per batch.
    seed: shuffling seed; each epoch is shuffled differently.
    shuffle: whether to shuffle.
    num_epochs: passes over the data; None repeats forever.
    num_samples: for audio of varying length, the length every clip is cut or zero-padded to.
    drop_remainder: drop a last, smaller batch.
    frame_targets: for a dataset of events (`synth_soundscapes`, `urban_sed`), `num_frames` and
      `frame_rate` of the targets `y` (see `soundjax.data.sed_targets.events_to_frame_targets`).
    label: the class-label feature `y` holds (e.g. "syllable" of `synth_vocal_percussion`),
      or a sequence of them, one per head of a multi-head model (e.g. `("phoneme_onset",
      "phoneme_nucleus")`), giving `y` int32 `[batch, len(label)]`; None: the builder's
      supervised label.
    exclude: `{feature: values}`: records whose class-label `feature` is one of `values` are
      left out (e.g. `{"user": held_out}`), before shuffling.
    shard: which part of every batch this process reads, e.g. `grain.sharding.ShardByJaxProcess()`
      (see `shard_batches`); None, or one shard, reads whole batches.

  Returns:
    A dataset whose items are `{"x": float32 [batch, ...], "y": int32 [batch]}`, or for events
    `"y": float32 [batch, num_frames, classes]` of 0 and 1; for one of several shards, this
    shard's rows of them and a `"mask"` (see `shard_batches`).

  Raises:
    ValueError: a dataset of events without `frame_targets`, an unknown `label` or `exclude`
      feature, an `exclude` that leaves nothing, or a `batch_size` the shards cannot split.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
  dataset = grain.MapDataset.source(_kept(builder, split, split_source(builder, split), exclude))
  if shuffle:  # Before repeat: grain then draws a new permutation for every epoch.
    dataset = dataset.shuffle(seed=seed)
  if num_epochs != 1:
    dataset = dataset.repeat(num_epochs)
  dataset = dataset.map(_to_example(builder, num_samples, frame_targets, label))
  if shard is not None and shard.shard_count > 1:
    return shard_batches(dataset, batch_size, shard, drop_remainder=drop_remainder)
  return dataset.batch(batch_size, drop_remainder=drop_remainder)


def shard_batches(examples: grain.MapDataset, batch_size: int, shard: grain.sharding.ShardOptions,
                  *, drop_remainder: bool = False) -> grain.MapDataset:
  """Shard `shard.shard_index` of `shard.shard_count` of every batch of `examples`.

  Item `i` holds rows `[k * b, (k + 1) * b)` of batch `i`, `b = batch_size // shard_count`, `k`
  the shard index, so the shards' items `i`, concatenated in shard order, are batch `i` of
  `examples.batch(batch_size)`, and a shard reads only its own records. Every item has `b` rows and
  a bool `"mask"` of the real ones: a last, smaller batch (kept unless `drop_remainder`) is filled
  up with repeats of the first records, masked out, so every shard has as many items (which
  processes stepping together need). The shard's own `drop_remainder` is not used.

  Raises:
    ValueError: `batch_size` is not a multiple of `shard.shard_count`.
  """
  count = shard.shard_count
  if batch_size % count:
    raise ValueError(f"batch_size {batch_size} cannot be split over {count} shards (processes); "
                     "use a multiple of the shard count.")
  total = len(examples)
  num_batches = total // batch_size if drop_remainder else -(-total // batch_size)

  def padded(index):
    return {**examples[index % total], "mask": np.bool_(index < total)}

  rows = grain.MapDataset.range(num_batches * batch_size).map(padded)
  # Batches of one shard's rows, the shards' rows of each batch in turn: take every count-th.
  return rows.batch(batch_size // count)[shard.shard_index::count]


def arrays(builder: tfds.core.DatasetBuilder, split: str, *, limit: Optional[int] = None,
           num_samples: Optional[int] = None,
           frame_targets: Optional[Dict[str, Any]] = None,
           label: Optional[Union[str, Sequence[str]]] = None,
           exclude: Optional[Dict[str, Sequence[int]]] = None) -> Dict[str, np.ndarray]:
  """A whole split (or its first `limit` examples) as stacked arrays, for evaluation (`batches`'
  arguments)."""
  # One batch of at most the split's size holds every record `exclude` keeps.
  size = len(split_source(builder, split)) if limit is None else limit
  return batches(builder, split, batch_size=size, num_samples=num_samples,
                 frame_targets=frame_targets, label=label, exclude=exclude)[0]
