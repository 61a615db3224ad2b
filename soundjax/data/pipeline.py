"""From a dataset name to grain batches of numpy dicts `{"x": [batch, ...], "y": [batch]}`.

Datasets are TFDS builders prepared as array_record and read with random access (no TensorFlow).
A training stream is a `grain.MapDataset`, so batch `i` is a pure function of `(seed, i)`: a run
resumed at step `i` sees exactly the batches an uninterrupted run would.
"""

import os
from typing import Any, Dict, Optional

import grain
import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio
from soundjax.data.builders import BUILDERS


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


def num_classes(builder: tfds.core.DatasetBuilder) -> int:
  """Number of classes of the builder's label feature (or of each label of a list of events)."""
  feature = builder.info.features[builder.info.supervised_keys[1]]
  if isinstance(feature, tfds.features.Sequence):  # Strong labels: one class per event.
    feature = feature.feature
  return feature.num_classes


def split_source(builder: tfds.core.DatasetBuilder, split: str):
  """Random-access source of one split's records."""
  if split not in builder.info.splits:
    raise ValueError(f"{builder.name} has no split {split!r}; it has {list(builder.info.splits)}.")
  return builder.as_data_source(split=split)


def _to_example(builder: tfds.core.DatasetBuilder, num_samples: Optional[int]):
  x_key, y_key = builder.info.supervised_keys

  def to_example(record: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    x = np.asarray(record[x_key], np.float32)
    if num_samples is not None:
      x = audio.fit_length(x, num_samples)
    return {"x": x, "y": np.asarray(record[y_key], np.int32)}

  return to_example


def batches(builder: tfds.core.DatasetBuilder, split: str, *, batch_size: int, seed: int = 0,
            shuffle: bool = False, num_epochs: Optional[int] = 1,
            num_samples: Optional[int] = None, drop_remainder: bool = False) -> grain.MapDataset:
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

  Returns:
    A dataset whose items are `{"x": float32 [batch, ...], "y": int32 [batch]}`.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
  dataset = grain.MapDataset.source(split_source(builder, split))
  if shuffle:  # Before repeat: grain then draws a new permutation for every epoch.
    dataset = dataset.shuffle(seed=seed)
  if num_epochs != 1:
    dataset = dataset.repeat(num_epochs)
  dataset = dataset.map(_to_example(builder, num_samples))
  return dataset.batch(batch_size, drop_remainder=drop_remainder)


def arrays(builder: tfds.core.DatasetBuilder, split: str, *, limit: Optional[int] = None,
           num_samples: Optional[int] = None) -> Dict[str, np.ndarray]:
  """A whole split (or its first `limit` examples) as stacked arrays, for evaluation."""
  size = len(split_source(builder, split))
  size = size if limit is None else min(limit, size)
  batch = batches(builder, split, batch_size=size, num_samples=num_samples)[0]
  return batch
