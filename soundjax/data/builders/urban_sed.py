"""`urban_sed`: URBAN-SED (Salamon et al., WASPAA 2017), scaper soundscapes with strong labels.

Read from a manual download (or a user's own scaper run in the same layout): one record per
soundscape, its mono `audio [samples]` resampled to the `sample_rate` setting (default 44.1 kHz,
the files' own rate) and its events, in the annotation file's order, as parallel variable-length
`onsets`, `offsets` (seconds) and `labels` (indices into `CLASSES`). Split sizes are whatever the
folders hold (6000/2000/2000 in the published set). Every annotation file is parsed before any
audio is decoded, so a malformed row fails within seconds, naming its file and line.
"""

import dataclasses
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio
from soundjax.data.builders.manual import manual_folder

CLASSES = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
           "engine_idling", "gun_shot", "jackhammer", "siren", "street_music")
SPLITS = ("train", "validate", "test")
# The folder the published archive unpacks to; the manual folder may be it or hold it.
ARCHIVE_FOLDER = "URBAN-SED_v2.0.0"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
Download URBAN-SED v2.0.0 (Zenodo record 1324404, URBAN-SED_v2.0.0.tar.gz) and unpack it into
the manual folder (the `manual_dir` setting, by default `<data_dir>/downloads/manual/`), so that
it (or its {ARCHIVE_FOLDER}/ subfolder) holds:
  audio/train/*.wav, audio/validate/*.wav, audio/test/*.wav
                      the soundscapes (6000 / 2000 / 2000 in the published set)
  annotations/train/*.txt, annotations/validate/*.txt, annotations/test/*.txt
                      one per WAV with the same name, rows "onset<TAB>offset<TAB>label" in
                      seconds, labels among {", ".join(CLASSES)}
The .jams files next to the .txt files are not read. A soundscape set of your own made with
scaper (its `txt_path` annotations) in this layout works the same way.
"""

Annotation = Tuple[np.ndarray, np.ndarray, np.ndarray]  # onsets, offsets, label indices.


@dataclasses.dataclass
class UrbanSedConfig(tfds.core.BuilderConfig):
  """The sample rate the soundscapes are resampled to."""
  sample_rate: int = 44100


def urban_sed_config(*, sample_rate=44100) -> UrbanSedConfig:
  """Returns a validated config named after its settings, e.g. "sr44100"."""
  checks.integer("urban_sed: sample_rate", sample_rate, 1)
  return UrbanSedConfig(name=f"sr{sample_rate}", sample_rate=int(sample_rate))


def read_annotation(path: str) -> Annotation:
  """Parses a simplified annotation file: rows `onset offset label` (tab-separated), seconds.

  Blank lines are skipped. An empty file is a soundscape without events.

  Raises:
    ValueError: naming `path:line` for a row without exactly three fields, times that are not
      finite numbers, a negative onset, an onset after its offset, or a label not in `CLASSES`.
  """
  onsets, offsets, labels = [], [], []
  with open(path) as file:
    for number, line in enumerate(file, 1):
      fields = line.split()
      if not fields:
        continue
      where = f"{path}:{number}"
      if len(fields) != 3:
        raise ValueError(f"{where}: expected 'onset<TAB>offset<TAB>label', got {line.strip()!r}")
      try:
        onset, offset = float(fields[0]), float(fields[1])
      except ValueError:
        raise ValueError(f"{where}: onset and offset must be numbers, got {fields[:2]}") from None
      if not (np.isfinite(onset) and np.isfinite(offset)) or not 0 <= onset <= offset:
        raise ValueError(f"{where}: need finite times with 0 <= onset <= offset, got "
                         f"{onset:g} {offset:g}")
      if fields[2] not in CLASSES:
        raise ValueError(f"{where}: unknown label {fields[2]!r}"
                         f"{checks.closest(fields[2], CLASSES)}; URBAN-SED has {list(CLASSES)}")
      onsets.append(onset)
      offsets.append(offset)
      labels.append(CLASSES.index(fields[2]))
  return (np.asarray(onsets, np.float32), np.asarray(offsets, np.float32),
          np.asarray(labels, np.int64))


def dataset_root(manual_dir: str) -> str:
  """The folder holding `audio/` and `annotations/`: `manual_dir` or its `ARCHIVE_FOLDER`."""
  nested = os.path.join(manual_dir, ARCHIVE_FOLDER)
  if not os.path.isdir(os.path.join(manual_dir, "audio")) and os.path.isdir(nested):
    return nested
  return manual_dir


def split_files(root: str, split: str) -> List[Tuple[str, str]]:
  """`(wav path, annotation path)` of every soundscape of `split`, sorted by file name.

  Raises:
    FileNotFoundError: a folder without WAVs, or a WAV without its annotation (or the reverse).
  """
  audio_dir, notes_dir = (os.path.join(root, kind, split) for kind in ("audio", "annotations"))
  stems = {name[:-4]: name for name in os.listdir(audio_dir) if name.lower().endswith(".wav")}
  notes = {name[:-4] for name in os.listdir(notes_dir) if name.endswith(".txt")}
  if not stems:
    raise FileNotFoundError(f"urban_sed: no .wav files in {audio_dir}.\n"
                            + MANUAL_DOWNLOAD_INSTRUCTIONS)
  for missing, where, kind in ((sorted(set(stems) - notes), notes_dir, ".txt annotation"),
                               (sorted(notes - set(stems)), audio_dir, ".wav")):
    if missing:
      more = " ..." if len(missing) > 5 else ""
      raise FileNotFoundError(f"urban_sed: {len(missing)} soundscapes lack their {kind} in "
                              f"{where}: {', '.join(missing[:5])}{more}")
  return [(os.path.join(audio_dir, stems[stem]), os.path.join(notes_dir, stem + ".txt"))
          for stem in sorted(stems)]


class UrbanSed(tfds.core.GeneratorBasedBuilder):
  """URBAN-SED soundscapes with `(onset, offset, label)` events; splits train/validate/test."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [urban_sed_config()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # Raw bytes: 6x faster to write than a protobuf float list, read back the same.
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                          encoding=tfds.features.Encoding.BYTES),
            "filename": tfds.features.Text(),
            "onsets": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "offsets": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=CLASSES)),
        }),
        supervised_keys=("audio", "labels"),
        # Records in generation order, so record `k` of a split is its clip `k` (sorted by file
        # name for urban_sed); training shuffles at read time.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    root = dataset_root(manual_folder(dl_manager, "urban_sed"))
    needed = [os.path.join(kind, split) for kind in ("audio", "annotations") for split in SPLITS]
    missing = [name for name in needed if not os.path.isdir(os.path.join(root, name))]
    if missing:
      raise FileNotFoundError(f"urban_sed: {', '.join(missing)} not found in {root}.\n"
                              + MANUAL_DOWNLOAD_INSTRUCTIONS)
    # Parse every annotation before decoding any audio: a bad row fails fast, writing nothing.
    splits = {split: {wav: read_annotation(txt) for wav, txt in split_files(root, split)}
              for split in SPLITS}
    return {split: self._generate_examples(clips) for split, clips in splits.items()}

  def _generate_examples(self, clips: Dict[str, Annotation]):
    for path, (onsets, offsets, labels) in clips.items():
      filename = os.path.basename(path)
      waveform = audio.load_audio(path, self.builder_config.sample_rate)
      yield filename, {"audio": waveform, "filename": filename, "onsets": onsets,
                       "offsets": offsets, "labels": labels}
