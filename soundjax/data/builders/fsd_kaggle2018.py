"""`fsd_kaggle2018`: FSDKaggle2018 (DCASE 2018 task 2), 41 classes, read from a manual download."""

import csv
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio
from soundjax.data.builders.manual import manual_folder

LABELS = (
    "Acoustic_guitar", "Applause", "Bark", "Bass_drum", "Burping_or_eructation", "Bus", "Cello",
    "Chime", "Clarinet", "Computer_keyboard", "Cough", "Cowbell", "Double_bass",
    "Drawer_open_or_close", "Electric_piano", "Fart", "Finger_snapping", "Fireworks", "Flute",
    "Glockenspiel", "Gong", "Gunshot_or_gunfire", "Harmonica", "Hi-hat", "Keys_jangling", "Knock",
    "Laughter", "Meow", "Microwave_oven", "Oboe", "Saxophone", "Scissors", "Shatter", "Snare_drum",
    "Squeak", "Tambourine", "Tearing", "Telephone", "Trumpet", "Violin_or_fiddle", "Writing",
)
TRAIN_AUDIO = "FSDKaggle2018.audio_train"
TEST_AUDIO = "FSDKaggle2018.audio_test"
TRAIN_CSV = os.path.join("FSDKaggle2018.meta", "train_post_competition.csv")
TEST_CSV = os.path.join("FSDKaggle2018.meta", "test_post_competition_scoring_clips.csv")

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Download FSDKaggle2018 (Zenodo record 2552860) and unzip it into the manual folder
(by default `<data_dir>/downloads/manual/`, or set `config.data.manual_dir`) so that it holds:
  {TRAIN_AUDIO}/*.wav
  {TEST_AUDIO}/*.wav
  {TRAIN_CSV}   (columns fname,label,manually_verified,...)
  {TEST_CSV}    (columns fname,label,usage,...)
"""


@dataclasses.dataclass
class FsdKaggle2018Config(tfds.core.BuilderConfig):
  """Sample rate the clips are resampled to (32 kHz as in the paper's victim models)."""
  sample_rate: int = 32000
  verified_only: bool = False


def fsd_kaggle2018_config(*, sample_rate=32000, verified_only=False) -> FsdKaggle2018Config:
  """Returns a config named after its settings."""
  checks.positive("fsd_kaggle2018 sample_rate", sample_rate)
  name = f"sr{sample_rate}" + ("_verified" if verified_only else "")
  return FsdKaggle2018Config(name=name, sample_rate=sample_rate, verified_only=verified_only)


def _read_rows(path: str):
  with open(path, newline="") as file:
    rows = list(csv.DictReader(file))
  missing = {"fname", "label"} - set(rows[0] if rows else {})
  if missing:
    raise ValueError(f"{path}: missing columns {sorted(missing)}.")
  return rows


class FsdKaggle2018(tfds.core.GeneratorBasedBuilder):
  """Freesound general-purpose audio tagging clips; variable-length mono audio, one label each."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [fsd_kaggle2018_config()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=LABELS),
            "manually_verified": tfds.features.Scalar(dtype=np.bool_),
        }),
        supervised_keys=("audio", "label"),
    )

  def _split_generators(self, dl_manager):
    root = manual_folder(dl_manager, "fsd_kaggle2018")
    needed = [TRAIN_AUDIO, TEST_AUDIO, TRAIN_CSV, TEST_CSV]
    missing = [name for name in needed if not os.path.exists(os.path.join(root, name))]
    if missing:
      raise FileNotFoundError(
          f"fsd_kaggle2018: {', '.join(missing)} not found in {root}.\n"
          + MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {
        "train": self._generate_examples(os.path.join(root, TRAIN_CSV),
                                         os.path.join(root, TRAIN_AUDIO)),
        "test": self._generate_examples(os.path.join(root, TEST_CSV),
                                        os.path.join(root, TEST_AUDIO)),
    }

  def _generate_examples(self, csv_path: str, audio_dir: str):
    config = self.builder_config
    for row in _read_rows(csv_path):
      verified = row.get("manually_verified", "1") == "1"
      if config.verified_only and not verified:
        continue
      if row["label"] not in LABELS:
        raise ValueError(f"{csv_path}: unknown label {row['label']!r} for {row['fname']}.")
      waveform = audio.load_audio(os.path.join(audio_dir, row["fname"]), config.sample_rate)
      yield row["fname"], {"audio": waveform, "label": row["label"],
                           "manually_verified": verified}
