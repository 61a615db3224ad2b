"""Audio file reading and sanity checks: every bad clip fails loudly, naming its source."""

import os

import librosa
import numpy as np
import soundfile

from soundjax import checks


class AudioError(ValueError):
  """A clip that cannot be used: unreadable, empty, non-finite or of the wrong shape."""


def check_waveform(waveform: np.ndarray, source: str) -> np.ndarray:
  """Returns `waveform` as float32 if it is a finite, non-empty 1-D signal.

  Args:
    waveform: the samples.
    source: what to name in the error (a file path or a description).

  Raises:
    AudioError: if the signal is not 1-D, is empty, or holds NaN or Inf.
  """
  waveform = np.asarray(waveform)
  if waveform.ndim != 1:
    raise AudioError(f"{source}: expected mono audio of shape [samples], got {waveform.shape}.")
  if waveform.size == 0:
    raise AudioError(f"{source}: the audio is empty (0 samples).")
  if not np.all(np.isfinite(waveform)):
    bad = int(np.sum(~np.isfinite(waveform)))
    raise AudioError(f"{source}: the audio holds {bad} NaN/Inf samples.")
  return waveform.astype(np.float32)


def load_audio(path: str, sample_rate: int) -> np.ndarray:
  """Reads a sound file as mono float32 at `sample_rate`, resampling if needed.

  Args:
    path: a file soundfile can read (WAV, FLAC, OGG, ...).
    sample_rate: the rate the caller works at, in Hz.

  Returns:
    The checked waveform, shape `[samples]`.

  Raises:
    AudioError: if the file is missing, unreadable, empty or non-finite.
  """
  checks.positive("sample_rate", sample_rate)
  if not os.path.isfile(path):
    raise AudioError(f"{path}: no such audio file.")
  try:
    waveform, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
  except (soundfile.LibsndfileError, RuntimeError) as error:
    raise AudioError(f"{path}: unreadable audio file ({error}).") from error
  waveform = check_waveform(waveform.mean(axis=1), path)
  if file_rate != sample_rate:
    waveform = librosa.resample(waveform, orig_sr=file_rate, target_sr=sample_rate)
  return check_waveform(waveform, path)


def fit_length(waveform: np.ndarray, num_samples: int) -> np.ndarray:
  """Zero-pads or truncates a clip at its end to exactly `num_samples`."""
  if waveform.shape[-1] >= num_samples:
    return waveform[..., :num_samples]
  pad = [(0, 0)] * (waveform.ndim - 1) + [(0, num_samples - waveform.shape[-1])]
  return np.pad(waveform, pad)
