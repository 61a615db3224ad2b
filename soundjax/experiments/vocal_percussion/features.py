"""Paper 2's input patches: a 64-band magnitude mel spectrogram of 48 frames, fixed normalisation.

The published patches (Delgado et al., SMC 2022; README: "64x48 log Mel spectrograms computed with
a frame size of 23 ms and a hop size of 8 ms") are, per onset, `librosa.feature.melspectrogram(
power=1.0, n_mels=64)` (the mel filterbank applied to |STFT|) from the onset's frame on, cut or
zero-padded to 48 frames, then normalised with constants fixed over the training set
(`norm_min_max` in `src/models/train_deep.py`, computed by `src/data/get_normalization_values.py`
of github.com/alejandrodl/vocal-percussion-transcription):

  x = (x - 0.0) / (3.7073483668036347 - 0.0 + 1e-16)          # min-max by the set's [min, max]
  x = log(x + 1e-4)
  x = (x + 9.210340371976182) / (9.999500033329732e-05 + 9.210340371976182 + 1e-16)

The second pair is `[log(1e-4), log(1 + 1e-4)]`, the range of the log of [0, 1], so a patch of
the training set lies in [0, 1] and a zero (padded) frame maps to 0.

Layout: soundjax front ends are time-major, `[frames, n_mels]`, low bands first. The published
code stores `np.flipud(S.T)`, `[n_mels, frames]` with the highest band in row 0, so an image of it
shows low frequencies at the bottom: a display convention. Here the time-major patch with band 0
first is that image read bottom-up and transposed, the same numbers; only weights trained on the
published layout would need the flip (and the transpose).

Where the published patches differ (on purpose, kept here as the issue specifies):
- The published code takes a whole take's spectrogram with librosa 0.8's `pad_mode="reflect"` and
  starts a patch at frame `floor(onset_sample / hop)`, so the first frame reaches up to half a
  frame before the onset. A soundjax record starts at its onset, so frame 0 is centred on it and
  the half frame before it is zeros (`pad_mode="constant"`, librosa 0.10's default): the closest
  to the quiet before an onset, without the reflection of the burst that "reflect" would add.
- The README's 8 ms hop is 353 samples at 44.1 kHz; the code that made the paper's patches used
  345 (7.8 ms): pass `hop_seconds=PUBLISHED_HOP_SECONDS` for it.
"""

import math
from typing import Callable, Tuple

import jax
import jax.numpy as jnp

from soundjax import checks, frontend

# `norm_min_max` of the published train_deep.py: the [min, max] of the training set's magnitude
# mel patches, then of their log(x + 1e-4) after the first min-max.
NORM_MIN_MAX = ((0.0, 3.7073483668036347), (-9.210340371976182, 9.999500033329732e-05))
LOG_OFFSET = 1e-4
# The published code's hop: 345 samples at 44.1 kHz (the README rounds it to 8 ms).
PUBLISHED_HOP_SECONDS = 345 / 44100
# Floor of the power under the square root: sqrt's derivative is infinite at 0, and times the zero
# derivative of an exactly silent bin gives NaN. Its root, 1e-15, is far below the 1e-4 * 3.7 that
# the log's offset already ignores, so values do not change.
_POWER_FLOOR = 1e-30


def patch_framing(*, sample_rate: float, frame_seconds: float = 0.023,
                  hop_seconds: float = 0.008) -> Tuple[int, int]:
  """`(n_fft, hop_length)`: the next power of two of the frame's samples, the hop's rounded.

  Example:
    >>> patch_framing(sample_rate=44100), patch_framing(sample_rate=16000)
    ((1024, 353), (512, 128))
  """
  checks.positive("sample_rate", sample_rate)
  checks.positive("frame_seconds", frame_seconds)
  checks.positive("hop_seconds", hop_seconds)
  # The tolerance keeps an exact product (0.032 s * 16 kHz = 512.0000000001) from rounding up.
  frame = max(1, math.ceil(frame_seconds * sample_rate - 1e-6))
  hop_length = int(round(hop_seconds * sample_rate))
  if hop_length < 1:
    raise ValueError(f"hop_seconds {hop_seconds!r} is under one sample at {sample_rate} Hz")
  return 1 << (frame - 1).bit_length(), hop_length


def normalize_patch(magnitude_mel: jax.Array) -> jax.Array:
  """The published fixed normalisation of a magnitude mel patch (module docstring), elementwise.

  The 1e-16 of the published denominators is below float64's resolution there, so it is left out.
  """
  (low1, high1), (low2, high2) = NORM_MIN_MAX
  x = (magnitude_mel - low1) / (high1 - low1)
  x = jnp.log(x + LOG_OFFSET)
  return (x - low2) / (high2 - low2)


def patch_frontend(*, sample_rate: float, n_mels: int = 64, num_frames: int = 48,
                   frame_seconds: float = 0.023,
                   hop_seconds: float = 0.008) -> Callable[[jax.Array], jax.Array]:
  """Returns `f(waveform[samples]) -> [num_frames, n_mels]`, Paper 2's normalised input patch.

  `f(y)` equals `normalize_patch(fit(librosa.feature.melspectrogram(y=y, sr=sample_rate,
  n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=1.0).T))` where `(n_fft, hop_length)
  = patch_framing(...)` (periodic Hann, `center=True` with zero padding, Slaney mel) and `fit`
  cuts the frames to `num_frames` or zero-pads them at the end, as the published code pads before
  normalising. Pure: jit-, vmap- and grad-able, the filterbank a constant built once; the
  magnitude is `sqrt(max(power, 1e-30))`, so the gradient is finite (zero) on digital silence.

  Args:
    sample_rate: in Hz (published: 44100; the synthetic set's 16000 gives 512 / 128).
    n_mels: mel bands (published: 64), at most `n_fft // 2`.
    num_frames: frames per patch (published: 48).
    frame_seconds: the analysis frame, rounded up to a power of two of samples (23 ms: 1024 at
      44.1 kHz).
    hop_seconds: between frames (README: 8 ms; the published code's 345 samples at 44.1 kHz are
      `PUBLISHED_HOP_SECONDS`).

  Returns:
    `f` for one unbatched 1-D waveform starting at its onset; batch it with `jax.vmap`.

  Raises:
    ValueError: an invalid argument; when `f` is traced, a waveform that is not 1-D or is empty.

  Example:
    >>> f = patch_frontend(sample_rate=16000)
    >>> patches = jax.jit(jax.vmap(f))(clips)  # [batch, 48, 64]
  """
  n_fft, hop_length = patch_framing(sample_rate=sample_rate, frame_seconds=frame_seconds,
                                    hop_seconds=hop_seconds)
  checks.integer("num_frames", num_frames)
  filterbank = frontend.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels)

  def f(waveform: jax.Array) -> jax.Array:
    waveform = jnp.asarray(waveform, jnp.float32)
    if waveform.ndim != 1 or waveform.shape[0] == 0:
      raise ValueError(f"patch_frontend: waveform must be a non-empty 1-D [samples], got shape "
                       f"{waveform.shape}; batch with jax.vmap")
    power = frontend.power_spectrogram(waveform, n_fft=n_fft, hop_length=hop_length,
                                       center=True, pad_mode="constant")
    magnitude = jnp.sqrt(jnp.maximum(power, _POWER_FLOOR))
    # HIGHEST keeps full float32 products on accelerators, whose default is bfloat16/TF32.
    mel = jnp.matmul(magnitude, jnp.asarray(filterbank, magnitude.dtype),
                     precision=jax.lax.Precision.HIGHEST)
    mel = jnp.pad(mel[:num_frames], ((0, max(0, num_frames - mel.shape[0])), (0, 0)))
    return normalize_patch(mel)

  return f
