"""`digits`: handwritten digits, scikit-learn's bundled 8x8 set or a user's TFDS MNIST.

Settings (`data.prepare("digits", ..., source=..., classes=...)`):

- `source="sklearn"` (default): the 1,797 UCI/scikit-learn images, a fixed 80/20 split.
- `source="mnist"`: MNIST read from a TFDS data_dir that already holds it (see
  `MNIST_INSTRUCTIONS`). Nothing is downloaded.
- `classes`: the digits to keep, relabelled 0..k-1 in the given order, e.g. `(0, 1)` for the
  paper's two-class set-ups. Default: all ten.
- `normalize`: pixels in [0, 1] when False (default); when True, z-scored as in the paper's
  PyTorch code, MNIST with its published constants `(x - 0.1307) / 0.3081` and the scikit-learn
  digits with their own training-split pixel mean and standard deviation (all ten digits), so
  that the dataset mean is about 0 and a black pixel is negative for both.
"""

import dataclasses
from typing import Tuple

import numpy as np
import tensorflow_datasets as tfds
from sklearn import datasets as sk_datasets

from soundjax.data.builders.manual import manual_folder

# A fixed split, so every run and every machine sees the same test images.
_SPLIT_SEED = 0
_TEST_FRACTION = 0.2
# torchvision's MNIST normalisation used by the paper: `transforms.Normalize((0.1307,), (0.3081,))`.
_MNIST_MEAN, _MNIST_STD = 0.1307, 0.3081
SOURCES = {"sklearn": (8, 8), "mnist": (28, 28)}
ALL_DIGITS = tuple(range(10))

MNIST_INSTRUCTIONS = """
digits(source="mnist") reads MNIST from a TFDS data_dir, given as the manual folder (the
`manual_dir` setting, by default `<data_dir>/downloads/manual`), prepared in array_record
format so that `<manual_dir>/mnist/<version>/` holds `dataset_info.json` and
`mnist-{train,test}.array_record-*` files. soundjax never downloads it. On a machine with internet:
  python -c "import tensorflow_datasets as tfds; tfds.builder('mnist', data_dir='DIR',
             file_format='array_record').download_and_prepare()"
then copy DIR/mnist into the manual folder (or set the manual folder to DIR).
"""


@dataclasses.dataclass
class DigitsConfig(tfds.core.BuilderConfig):
  """Which images (`source`) and which digits (`classes`, relabelled 0..k-1)."""
  source: str = "sklearn"
  classes: Tuple[int, ...] = ALL_DIGITS
  normalize: bool = False


def digits_config(*, source: str = "sklearn", classes=ALL_DIGITS,
                  normalize: bool = False) -> DigitsConfig:
  """Returns a validated config named after its settings, e.g. "mnist_classes0-1_normalized"."""
  if source not in SOURCES:
    raise ValueError(f"digits: source must be one of {sorted(SOURCES)}, got {source!r}.")
  classes = tuple(int(c) for c in classes)
  if len(classes) < 2 or len(set(classes)) != len(classes) or not set(classes) <= set(ALL_DIGITS):
    raise ValueError(f"digits: classes must be at least two distinct digits 0-9, got {classes}.")
  name = source if classes == ALL_DIGITS else f"{source}_classes{'-'.join(map(str, classes))}"
  name += "_normalized" if normalize else ""
  return DigitsConfig(name=name, source=source, classes=classes, normalize=bool(normalize))


def _sklearn_splits(normalize: bool):
  digits = sk_datasets.load_digits()
  order = np.random.default_rng(_SPLIT_SEED).permutation(len(digits.target))
  num_test = int(round(_TEST_FRACTION * len(order)))
  images = digits.images / 16.0
  if normalize:
    train = images[order[num_test:]]
    images = (images - train.mean()) / train.std()
  images = images.astype(np.float32)
  return {split: ((images[i], int(digits.target[i])) for i in indices)
          for split, indices in (("train", order[num_test:]), ("test", order[:num_test]))}


def _mnist_splits(manual_dir: str, normalize: bool):
  builder = tfds.builder("mnist", data_dir=manual_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(f"digits: no prepared mnist in {manual_dir}.\n{MNIST_INSTRUCTIONS}")
  # Random access (`as_data_source`) reads array_record only; TFDS's default is tfrecord.
  file_format = builder.info.file_format
  if file_format != tfds.core.file_adapters.FileFormat.ARRAY_RECORD:
    raise FileNotFoundError(f"digits: mnist in {manual_dir} is stored as {file_format.value}, "
                            f"not array_record.\n{MNIST_INSTRUCTIONS}")
  sources = {split: builder.as_data_source(split=split) for split in ("train", "test")}

  def examples(source):
    for record in source:
      image = np.asarray(record["image"], np.float32)[..., 0] / 255.0
      yield (image - _MNIST_MEAN) / _MNIST_STD if normalize else image, int(record["label"])

  return {split: examples(source) for split, source in sources.items()}


class Digits(tfds.core.GeneratorBasedBuilder):
  """Handwritten digit images `[height, width]` float32 with integer labels."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [digits_config()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MNIST_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=SOURCES[config.source], dtype=np.float32),
            "label": tfds.features.ClassLabel(names=[str(d) for d in config.classes]),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config
    if config.source == "mnist":
      splits = _mnist_splits(manual_folder(dl_manager, "digits"), config.normalize)
    else:
      splits = _sklearn_splits(config.normalize)
    return {split: self._generate_examples(examples) for split, examples in splits.items()}

  def _generate_examples(self, examples):
    relabel = {digit: index for index, digit in enumerate(self.builder_config.classes)}
    for key, (image, digit) in enumerate(examples):
      if digit in relabel:
        yield key, {"image": image.astype(np.float32), "label": relabel[digit]}
