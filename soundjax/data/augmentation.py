"""Host-side audio augmentation applied once, when a dataset is prepared (Paper 2).

Paper 2 (Delgado et al., SMC 2022) stores 10 augmented copies of every training recording, each a
pitch shift of U(-1.5, 1.5) semitones and a time stretch of U(0.8, 1.2), in a random order
(`src/data/generate_augmented_datasets.py`, with pyrubberband). Here librosa, a dependency,
stands in for rubberband: `librosa.effects.pitch_shift` (phase vocoder + soxr resampling) and
`librosa.effects.time_stretch` (phase vocoder). Both are numpy on the host and nondifferentiable:
call them from a builder's `_generate_examples`, never inside a traced function.

Where librosa's phase vocoder differs from rubberband, and what is done about it:
- It smears a transient over about one analysis frame, where rubberband keeps onsets sharp;
  `FRAME_SECONDS` (46 ms, 2048 samples at 44.1 kHz, 1024 at 16 kHz) keeps that smear shorter
  than librosa's default 93 ms frame while resolving a voice's harmonics.
- It loses the level of noise (a hi-hat, a fricative): its frames' phases no longer agree, so
  their overlap-add partly cancels, measured here at -3.4 dB per pass on white noise, -3 to
  -5 dB for a shift and a stretch, while a tone keeps its level. Each copy is therefore scaled
  to the energy an ideal shift and stretch would have, `energy(input) / rate`: a tone is left as
  it is, noise regains its level (the first frame, whose phases still agree, comes out up to
  3 dB louder). A copy's peak may so exceed 1.
"""

import math
from typing import NamedTuple, Tuple

import librosa
import numpy as np

from soundjax import checks

# The phase vocoder's analysis frame, rounded up to a power of two of samples; hop a quarter.
FRAME_SECONDS = 0.046


class ShiftAndStretch(NamedTuple):
  """One draw of `pitch_shift_and_stretch`.

  Attributes:
    semitones: the pitch shift, positive up.
    rate: the time stretch, librosa's and rubberband's `rate`: above 1 speeds the sound up, so a
      burst lasts `1 / rate` times as long.
    stretch_first: stretch, then shift; else shift, then stretch.
  """
  semitones: float
  rate: float
  stretch_first: bool


def draw_shift_and_stretch(rng: np.random.Generator, *, semitones: float = 1.5,
                           stretch: Tuple[float, float] = (0.8, 1.2)) -> ShiftAndStretch:
  """Draws a shift U(-semitones, semitones), a rate U(*stretch) and a fair order, in that order.

  Raises:
    ValueError: a negative `semitones` or a `stretch` range that is not `0 < low <= high`.
  """
  checks.nonnegative("semitones", semitones)
  low, high = stretch
  if not (checks.positive("stretch[0]", low) <= checks.positive("stretch[1]", high)):
    raise ValueError(f"stretch must be a range (low, high) with 0 < low <= high, got {stretch!r}")
  return ShiftAndStretch(semitones=float(rng.uniform(-semitones, semitones)),
                         rate=float(rng.uniform(low, high)),
                         stretch_first=bool(rng.integers(2)))


def shift_and_stretch(audio: np.ndarray, sample_rate: int,
                      draw: ShiftAndStretch) -> np.ndarray:
  """Applies one draw to a clip, returned cut or zero-padded at its end to the input's length.

  Both effects keep sample 0 where it is (centred frames), so a clip that starts at its onset
  still does; a slowed-down clip loses its end, a sped-up one gains trailing zeros. The result
  is scaled to `energy(audio) / rate` before the cut (module docstring).

  Args:
    audio: `[samples]` float, e.g. one utterance starting at its onset.
    sample_rate: in Hz.
    draw: what to apply.

  Returns:
    `[samples]` float32.
  """
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 1 or audio.size == 0:
    raise ValueError(f"audio must be a non-empty 1-D clip, got shape {audio.shape}")
  checks.integer("sample_rate", sample_rate)
  length = audio.size
  n_fft = 1 << (int(np.ceil(FRAME_SECONDS * sample_rate)) - 1).bit_length()
  framing = dict(n_fft=n_fft, hop_length=n_fft // 4)
  # Zeros after the clip change nothing it holds, and spare librosa a clip shorter than a frame
  # before either effect.
  audio = np.pad(audio, (0, max(0, math.ceil(n_fft * max(1.0, draw.rate)) - length)))

  def stretch(y):
    return librosa.effects.time_stretch(y, rate=draw.rate, **framing)

  def shift(y):
    return librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=draw.semitones, **framing)

  energy = np.sum(np.square(audio, dtype=np.float64))
  for effect in ((stretch, shift) if draw.stretch_first else (shift, stretch)):
    audio = effect(audio)
  # Before the cut: the energy the phase vocoder lost (see the module docstring), restored.
  kept = np.sum(np.square(audio, dtype=np.float64)) * draw.rate
  if kept > 0:
    audio = audio * np.float32(np.sqrt(energy / kept))
  out = np.zeros(length, np.float32)
  out[:min(length, audio.size)] = audio[:length]
  return out


def pitch_shift_and_stretch(audio: np.ndarray, sample_rate: int, rng: np.random.Generator, *,
                            semitones: float = 1.5,
                            stretch: Tuple[float, float] = (0.8, 1.2)) -> np.ndarray:
  """A random pitch shift and time stretch in a random order, as Paper 2 augments its takes.

  Draws `draw_shift_and_stretch(rng, ...)` and applies it with `shift_and_stretch`: the same
  Generator state gives the same clip. Host-side numpy; never call it inside a traced function.

  Args:
    audio: `[samples]` float, starting at its onset.
    sample_rate: in Hz.
    rng: the source of the draw, e.g. `np.random.default_rng([seed, *identity, copy])`.
    semitones: the largest shift either way (published: 1.5).
    stretch: the range of the rate (published: 0.8 to 1.2).

  Returns:
    `[samples]` float32, the input's length, onset still at sample 0.

  Example:
    >>> copy = pitch_shift_and_stretch(clip, 16000, np.random.default_rng([0, 3, 1]))
  """
  draw = draw_shift_and_stretch(rng, semitones=semitones, stretch=stretch)
  return shift_and_stretch(audio, sample_rate, draw)
