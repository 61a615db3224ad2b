"""Parametric sound events synthesised from a seed: the offline stand-in for FSDKaggle2018.

Each class is a distinct family of sounds (tone, chirp, harmonic stack, noise burst, ...). Pitch,
duration, gain, onset and the background noise level are drawn at random per clip, so the task is
learnable but not trivial. Generation is host-side numpy, deterministic in `(seed, split, index)`.
"""

from typing import Callable, Dict

import numpy as np


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
  return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _sweep(t: np.ndarray, f0: float, f1: float) -> np.ndarray:
  """Exponential sweep from f0 to f1 Hz over the segment `t` (phase-continuous)."""
  duration = max(t[-1], 1e-6)
  rate = np.log(f1 / f0) / duration
  return np.sin(2 * np.pi * f0 * (np.expm1(rate * t) / rate))


def _tone(rng, t, sr):
  return np.sin(2 * np.pi * _log_uniform(rng, 200, 3000) * t)


def _chirp_up(rng, t, sr):
  f0 = _log_uniform(rng, 150, 1500)
  return _sweep(t, f0, f0 * rng.uniform(2.0, 4.0))


def _chirp_down(rng, t, sr):
  f0 = _log_uniform(rng, 600, 5000)
  return _sweep(t, f0, f0 / rng.uniform(2.0, 4.0))


def _harmonic(rng, t, sr):
  f0 = _log_uniform(rng, 80, 500)
  harmonics = np.arange(1, rng.integers(4, 10) + 1)
  harmonics = harmonics[harmonics * f0 < sr / 2]
  weights = harmonics ** -rng.uniform(0.5, 1.5)
  return np.sin(2 * np.pi * f0 * np.outer(harmonics, t)).T @ weights / weights.sum()


def _noise_burst(rng, t, sr):
  return rng.standard_normal(t.size) * 0.5


def _band_noise(rng, t, sr):
  spectrum = np.fft.rfft(rng.standard_normal(t.size))
  freqs = np.fft.rfftfreq(t.size, 1 / sr)
  centre = _log_uniform(rng, 300, 4000)
  spectrum *= np.abs(np.log(np.maximum(freqs, 1.0) / centre)) < rng.uniform(0.1, 0.3)
  band = np.fft.irfft(spectrum, n=t.size)
  return band / (np.max(np.abs(band)) + 1e-9)


def _clicks(rng, t, sr):
  period = int(sr / rng.uniform(5, 30))
  signal = np.zeros(t.size)
  signal[::period] = 1.0
  return np.convolve(signal, np.exp(-np.arange(int(0.002 * sr)) / (0.0005 * sr)), mode="same")


def _am_tone(rng, t, sr):
  modulation = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(4, 20) * t))
  return modulation * np.sin(2 * np.pi * _log_uniform(rng, 200, 3000) * t)


def _fm_tone(rng, t, sr):
  carrier = _log_uniform(rng, 300, 3000)
  rate, depth = rng.uniform(3, 12), carrier * rng.uniform(0.03, 0.1)
  return np.sin(2 * np.pi * carrier * t + (depth / rate) * np.sin(2 * np.pi * rate * t))


def _impact(rng, t, sr):
  partials = _log_uniform(rng, 100, 2000) * np.array([1.0, rng.uniform(1.5, 3.5)])
  decay = np.exp(-t / rng.uniform(0.02, 0.1))
  return decay * np.sin(2 * np.pi * np.outer(t, partials)).sum(axis=1) / 2


def _square(rng, t, sr):
  return np.sign(np.sin(2 * np.pi * _log_uniform(rng, 100, 1000) * t)) * 0.5


def _beeps(rng, t, sr):
  gate = np.sin(2 * np.pi * rng.uniform(3, 8) * t) > 0
  return gate * np.sin(2 * np.pi * _log_uniform(rng, 400, 3000) * t)


SOUND_CLASSES: Dict[str, Callable] = {
    "tone": _tone,
    "chirp_up": _chirp_up,
    "chirp_down": _chirp_down,
    "harmonic": _harmonic,
    "noise_burst": _noise_burst,
    "band_noise": _band_noise,
    "clicks": _clicks,
    "am_tone": _am_tone,
    "fm_tone": _fm_tone,
    "impact": _impact,
    "square": _square,
    "beeps": _beeps,
}
CLASS_NAMES = tuple(SOUND_CLASSES)


def _envelope(num_samples: int, ramp: int) -> np.ndarray:
  """Flat envelope with raised-cosine ramps, so events start and stop without clicks."""
  envelope = np.ones(num_samples)
  ramp = min(ramp, num_samples // 2)
  if ramp > 0:
    rise = 0.5 * (1 - np.cos(np.pi * np.arange(ramp) / ramp))
    envelope[:ramp], envelope[num_samples - ramp:] = rise, rise[::-1]
  return envelope


def synth_source(rng: np.random.Generator, label: int, *, sample_rate: int,
                 num_samples: int) -> np.ndarray:
  """The sound of class `label` alone, `num_samples` long, with 10 ms click-free ramps.

  The building block of `synth_event` (one event over noise) and of the polyphonic soundscapes
  (`soundjax.data.synthetic.soundscapes`), which set its level themselves.

  Args:
    rng: the generator its parameters (pitch, rate, ...) are drawn from.
    label: index into `CLASS_NAMES`.
    sample_rate: in Hz.
    num_samples: the event's length.

  Returns:
    float64 waveform `[num_samples]`, not normalised.
  """
  t = np.arange(num_samples) / sample_rate
  event = SOUND_CLASSES[CLASS_NAMES[label]](rng, t, sample_rate)
  return event * _envelope(num_samples, int(0.01 * sample_rate))


def synth_event(rng: np.random.Generator, label: int, *, sample_rate: int,
                num_samples: int) -> np.ndarray:
  """One clip of class `label`: an event at a random onset over background noise.

  Args:
    rng: the generator all randomness is drawn from.
    label: index into `CLASS_NAMES`.
    sample_rate: in Hz.
    num_samples: the clip length.

  Returns:
    float32 waveform `[num_samples]` with peak amplitude at most 1.
  """
  length = int(num_samples * rng.uniform(0.25, 0.8))
  onset = int(rng.integers(0, num_samples - length + 1))
  event = synth_source(rng, label, sample_rate=sample_rate, num_samples=length)
  event *= rng.uniform(0.2, 0.9) / (np.max(np.abs(event)) + 1e-9)
  clip = np.zeros(num_samples)
  clip[onset:onset + length] = event
  event_rms = np.sqrt(np.mean(np.square(event)))
  clip += rng.standard_normal(num_samples) * event_rms * 10 ** (-rng.uniform(0, 25) / 20)
  return (clip / max(1.0, np.max(np.abs(clip)))).astype(np.float32)
