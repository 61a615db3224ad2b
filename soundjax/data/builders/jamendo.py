"""`jamendo`: the Jamendo singing-voice corpus (Ramona et al. 2008), read from a manual download.

The builder stores one record per song: its log-mel features `[frames, 80]`, computed as in
Schlüter's ISMIR 2015 code used by Paper 1 (22.05 kHz, 1024-sample symmetric-Hann frames, hop
22050 // 70 = 315 samples with no padding, magnitude spectrum, 80 triangular mel bands 27.5 Hz -
8 kHz, `log(max(mel, 1e-7))`, NOT normalised), and the frame labels (1 = "sing"), frame `t`
being labelled by the `.lab` segment containing `t / 70` s. The 115-frame excerpts the model
sees are cut at read time by `soundjax.data.excerpts.Excerpts`, so the corpus is stored once,
not once per excerpt (115 times over).
"""

import dataclasses
import io
import os

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import audio
from soundjax.data.builders.manual import manual_folder

SPLITS = ("train", "valid", "test")
LOG_FLOOR = 1e-7  # The published `log(max(mel, 1e-7))`.

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Download the Jamendo corpus for singing voice detection (Zenodo record 2585988, or the files of
Schlüter's ismir2015 `datasets/jamendo/*/recreate.sh`) into the manual folder (the `manual_dir`
setting, by default `<data_dir>/downloads/manual/`) so that it holds:
  audio/<song>.ogg or audio/<song>.mp3     all 93 songs in one folder (any format soundfile reads)
  labels/<song>.lab                        lines "start_seconds end_seconds sing|nosing"
  filelists/train, filelists/valid, filelists/test
                                           one audio file name per line (e.g. "03 - Say me
                                           Good Bye.ogg"); 61 / 16 / 16 songs as published
"""


@dataclasses.dataclass
class JamendoConfig(tfds.core.BuilderConfig):
  """Feature settings; the defaults are Schlüter's (`defaults.vars`)."""
  sample_rate: int = 22050
  frame_len: int = 1024
  fps: int = 70
  mel_bands: int = 80
  mel_min: float = 27.5
  mel_max: float = 8000.0


def jamendo_config(*, sample_rate=22050, frame_len=1024, fps=70, mel_bands=80, mel_min=27.5,
                   mel_max=8000.0) -> JamendoConfig:
  """Returns a validated config named after its settings."""
  for field, value in (("sample_rate", sample_rate), ("frame_len", frame_len), ("fps", fps),
                       ("mel_bands", mel_bands)):
    checks.positive(f"jamendo {field}", value)
  if not 0 <= mel_min < mel_max <= sample_rate / 2:
    raise ValueError(f"jamendo: need 0 <= mel_min < mel_max <= sample_rate / 2, got "
                     f"{mel_min}, {mel_max}.")
  name = f"sr{sample_rate}_frame{frame_len}_fps{fps}_mel{mel_bands}_{mel_min:g}-{mel_max:g}"
  return JamendoConfig(name=name, sample_rate=sample_rate, frame_len=frame_len, fps=fps,
                       mel_bands=mel_bands, mel_min=mel_min, mel_max=mel_max)


def mel_filterbank(config: JamendoConfig) -> np.ndarray:
  """Schlüter's filterbank `[bins up to mel_max, mel_bands]`: HTK-mel-spaced triangles on FFT-bin
  edges, each normalised to unit sum (`create_mel_filterbank` in the published `audio.py`)."""
  input_bins = config.frame_len // 2 + 1
  mel = lambda hz: 1127.0 * np.log1p(hz / 700.0)
  peaks_mel = np.linspace(mel(config.mel_min), mel(config.mel_max), config.mel_bands + 2)
  peaks_hz = 700.0 * np.expm1(peaks_mel / 1127.0)
  fft_freqs = np.linspace(0, config.sample_rate / 2.0, input_bins)
  peaks_bin = np.searchsorted(fft_freqs, peaks_hz)
  filterbank = np.zeros((input_bins, config.mel_bands))
  for band in range(config.mel_bands):
    (left_hz, _, right_hz), (left, top, right) = peaks_hz[band:band + 3], peaks_bin[band:band + 3]
    filterbank[left:top, band] = (fft_freqs[left:top] - left_hz) / max(top - left, 1)
    filterbank[top:right, band] = (right_hz - fft_freqs[top:right]) / max(right - top, 1)
    filterbank[left:right, band] /= max(filterbank[left:right, band].sum(), np.finfo(float).tiny)
  bin_mel_max = input_bins * 2 * int(config.mel_max) // config.sample_rate
  return filterbank[:bin_mel_max]


def log_mel_features(waveform: np.ndarray, config: JamendoConfig, source: str) -> np.ndarray:
  """Published features of one song, `[frames, mel_bands]` float32 (see the module docstring)."""
  hop = config.sample_rate // config.fps
  num_frames = (len(waveform) - config.frame_len) // hop + 1
  if num_frames < 1:
    raise audio.AudioError(f"{source}: shorter than one {config.frame_len}-sample frame.")
  frames = np.lib.stride_tricks.sliding_window_view(waveform, config.frame_len)[::hop]
  filterbank = mel_filterbank(config)
  magnitude = np.abs(np.fft.rfft(frames * np.hanning(config.frame_len), axis=-1))
  mel = magnitude[:, :len(filterbank)] @ filterbank
  return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def frame_labels(lab_path: str, num_frames: int, fps: int) -> np.ndarray:
  """1 where the frame's time `t / fps` lies in a "sing" segment of the `.lab` file, else 0."""
  with io.open(lab_path) as file:
    rows = [line.split() for line in file if line.strip()]
  timestamps = np.arange(num_frames) / float(fps)
  labels = np.zeros(num_frames, np.int8)
  for number, row in enumerate(rows, 1):
    if len(row) != 3 or row[2] not in ("sing", "nosing"):
      raise ValueError(f"{lab_path}:{number}: expected 'start end sing|nosing', got {row}.")
    try:
      start, end = np.searchsorted(timestamps, [float(row[0]), float(row[1])])
    except ValueError:
      raise ValueError(f"{lab_path}:{number}: start and end must be seconds, got {row}.") from None
    labels[start:end] = row[2] == "sing"
  return labels


def read_filelist(path: str) -> list:
  """The audio file names listed in a file list, one per non-empty line."""
  with io.open(path) as file:
    return [line.strip() for line in file if line.strip()]


class Jamendo(tfds.core.GeneratorBasedBuilder):
  """Jamendo songs as log-mel features with frame-wise singing labels; splits train/valid/test."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [jamendo_config()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    bands = self.builder_config.mel_bands
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "features": tfds.features.Tensor(shape=(None, bands), dtype=np.float32),
            "labels": tfds.features.Tensor(shape=(None,), dtype=np.int8),
            "song": tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager):
    root = manual_folder(dl_manager, "jamendo")
    needed = ["audio", "labels"] + [os.path.join("filelists", split) for split in SPLITS]
    missing = [name for name in needed if not os.path.exists(os.path.join(root, name))]
    if missing:
      raise FileNotFoundError(f"jamendo: {', '.join(missing)} not found in {root}.\n"
                              + MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {split: self._generate_examples(root, read_filelist(
        os.path.join(root, "filelists", split))) for split in SPLITS}

  def _generate_examples(self, root: str, songs: list):
    config = self.builder_config
    for song in songs:
      lab_path = os.path.join(root, "labels", song.rsplit(".", 1)[0] + ".lab")
      if not os.path.isfile(lab_path):
        raise FileNotFoundError(f"jamendo: no label file {lab_path} for {song}.")
      path = os.path.join(root, "audio", song)
      features = log_mel_features(audio.load_audio(path, config.sample_rate), config, path)
      yield song, {"features": features, "song": song,
                   "labels": frame_labels(lab_path, len(features), config.fps)}
