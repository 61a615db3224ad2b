"""Polyphonic soundscapes synthesised from a seed, the way scaper made URBAN-SED.

A clip is a Brownian (or pink) noise background with 1-9 foreground events mixed in. Each event
is a sound of the synthetic classes of `soundjax.data.synthetic.events` (their generators are
reused, not copied), 0.5-4 s long, starting anywhere that leaves it at least 0.5 s inside the
clip and cut at the clip's end, at an SNR of 6-30 dB over the background; events may overlap.

SNR here is a power ratio: `10 log10(mean(event**2) / mean(background**2))`, the event's mean
over its own samples, the background's over the whole clip. (scaper uses LUFS loudness for both;
RMS power is its unweighted, ungated counterpart and needs no loudness model.) A mix that would
clip is scaled down as a whole, as scaper's `fix_clipping` does, which keeps every SNR.
Generation is host-side numpy, deterministic in the `rng` given.
"""

import dataclasses
from typing import Sequence

import numpy as np

from soundjax.data.synthetic import events

MIN_EVENTS, MAX_EVENTS = 1, 9
MIN_EVENT_SECONDS, MAX_EVENT_SECONDS = 0.5, 4.0
MIN_SNR_DB, MAX_SNR_DB = 6.0, 30.0
# Power spectrum exponent of each background: power ~ 1 / f**exponent.
BACKGROUNDS = {"brownian": 2.0, "pink": 1.0}
# Background RMS before any anti-clipping scaling: -40 dBFS leaves room for 30 dB events.
BACKGROUND_RMS = 0.01
# Below this the background's spectrum is flat: a true 1/f**2 diverges at DC (a random walk
# drifting far from zero), and nothing audible lies there.
NOISE_FLOOR_HZ = 20.0


def rms(signal: np.ndarray) -> float:
  """Root-mean-square amplitude of a signal."""
  return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


def colored_noise(rng: np.random.Generator, num_samples: int, *, sample_rate: int,
                  exponent: float) -> np.ndarray:
  """Gaussian noise of unit RMS whose power spectrum falls as `1 / f**exponent`.

  Args:
    rng: the generator the white noise is drawn from.
    num_samples: the length.
    sample_rate: in Hz.
    exponent: 2 for Brownian (red) noise, 1 for pink, 0 for white.

  Returns:
    float64 `[num_samples]`, zero mean, flat spectrum below `NOISE_FLOOR_HZ`.
  """
  spectrum = np.fft.rfft(rng.standard_normal(num_samples))
  freqs = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
  spectrum *= np.maximum(freqs, NOISE_FLOOR_HZ) ** (-exponent / 2)
  spectrum[0] = 0.0  # No DC offset.
  noise = np.fft.irfft(spectrum, n=num_samples)
  return noise / rms(noise)


@dataclasses.dataclass(frozen=True)
class Soundscape:
  """One mixed clip, its parts and its strong labels, events sorted by onset.

  Attributes:
    audio: float32 `[samples]`, the mix `background + sources.sum(0)`, peak at most 1.
    background: float32 `[samples]`, the background as mixed.
    sources: float32 `[events, samples]`, each event as mixed, zero outside its span.
    onsets: float32 `[events]`, seconds (a whole number of samples).
    offsets: float32 `[events]`, seconds, at most the clip length.
    labels: int32 `[events]`, indices into the `classes` the clip was made from.
    snr_db: float32 `[events]`, each event's SNR over the background (see the module docstring).
  """
  audio: np.ndarray
  background: np.ndarray
  sources: np.ndarray
  onsets: np.ndarray
  offsets: np.ndarray
  labels: np.ndarray
  snr_db: np.ndarray


def synth_soundscape(rng: np.random.Generator, classes: Sequence[str], *, sample_rate: int,
                     num_samples: int, background: str = "brownian") -> Soundscape:
  """A soundscape of 1-9 events of `classes` over a noise background (see the module docstring).

  Args:
    rng: the generator all randomness is drawn from.
    classes: names from `events.CLASS_NAMES` the events are drawn from, uniformly.
    sample_rate: in Hz.
    num_samples: the clip length, at least `MIN_EVENT_SECONDS` long.
    background: a key of `BACKGROUNDS`.

  Returns:
    The mix, its parts and its events.

  Example:
    >>> clip = synth_soundscape(np.random.default_rng(0), ("tone", "clicks"), sample_rate=16000,
    ...                         num_samples=160000)
    >>> clip.audio.shape, clip.labels.size in range(1, 10)
    ((160000,), True)
  """
  class_ids = [events.CLASS_NAMES.index(name) for name in classes]
  shortest = int(round(MIN_EVENT_SECONDS * sample_rate))
  longest = int(round(MAX_EVENT_SECONDS * sample_rate))
  if num_samples < shortest:
    raise ValueError(f"num_samples must hold a {MIN_EVENT_SECONDS} s event ({shortest} samples), "
                     f"got {num_samples}.")
  noise = BACKGROUND_RMS * colored_noise(rng, num_samples, sample_rate=sample_rate,
                                         exponent=BACKGROUNDS[background])
  count = int(rng.integers(MIN_EVENTS, MAX_EVENTS + 1))
  labels = rng.integers(0, len(class_ids), size=count)
  starts = rng.integers(0, num_samples - shortest + 1, size=count)
  stops = np.minimum(starts + rng.integers(shortest, longest + 1, size=count), num_samples)
  snr_db = rng.uniform(MIN_SNR_DB, MAX_SNR_DB, size=count)
  order = np.lexsort((labels, starts))  # By onset, then label: the order sed_eval lists.
  labels, starts, stops, snr_db = labels[order], starts[order], stops[order], snr_db[order]
  sources = np.zeros((count, num_samples))
  for row, (label, start, stop, snr) in enumerate(zip(labels, starts, stops, snr_db)):
    source = events.synth_source(rng, class_ids[label], sample_rate=sample_rate,
                                 num_samples=int(stop - start))
    sources[row, start:stop] = source * (BACKGROUND_RMS * 10 ** (snr / 20) / rms(source))
  mix = noise + sources.sum(axis=0)
  scale = 1.0 / max(1.0, float(np.max(np.abs(mix))))
  return Soundscape(
      audio=(mix * scale).astype(np.float32), background=(noise * scale).astype(np.float32),
      sources=(sources * scale).astype(np.float32),
      onsets=(starts / sample_rate).astype(np.float32),
      offsets=(stops / sample_rate).astype(np.float32), labels=labels.astype(np.int32),
      snr_db=snr_db.astype(np.float32))
