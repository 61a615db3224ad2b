"""Slaney mel filterbank, power to dB, min-max scaling and the log-mel front end.

`log_mel(...)` returns a pure per-example function `waveform[samples] -> [frames, n_mels]` equal to
`librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0, top_db=top_db).T` (periodic
Hann or Hamming window of `win_length <= n_fft`, Slaney mel scale and norm), optionally min-max
scaled per example to [0, 1], usable inside a waveform model, so that gradients flow from the
model back to the audio.
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from soundjax import checks
from soundjax.frontend.stft import check_framing, power_spectrogram, window_function

# Per-example scalings of the log-mel `log_mel(scaling=...)` takes: none, or `min_max_scale`.
SCALINGS = (None, "min_max")


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
  """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
  hz = np.asarray(hz, np.float64)
  linear = hz / (200.0 / 3.0)
  log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
  return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
  linear = mel * (200.0 / 3.0)
  log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
  return np.where(mel >= 15.0, log, linear)


def _check_mel(sample_rate: float, n_fft: int, n_mels: int, fmin: float,
               fmax: Optional[float]) -> float:
  """Validates the mel arguments and returns `fmax` (Nyquist when `None`)."""
  checks.positive("sample_rate", sample_rate)
  checks.integer("n_fft", n_fft)
  checks.integer("n_mels", n_mels)
  if n_mels > n_fft // 2:
    raise ValueError(f"n_mels must not exceed n_fft // 2 = {n_fft // 2}, got {n_mels}")
  fmax = sample_rate / 2.0 if fmax is None else fmax
  if fmax > sample_rate / 2.0:
    raise ValueError(f"fmax must not exceed sample_rate / 2 = {sample_rate / 2.0}, got {fmax}")
  if fmin < 0:
    raise ValueError(f"fmin must be non-negative, got {fmin}")
  if fmin >= fmax:
    raise ValueError(f"fmin must be below fmax = {fmax}, got {fmin}")
  return fmax


def mel_filterbank(*, sample_rate: float, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: Optional[float] = None) -> np.ndarray:
  """Slaney-style mel filterbank `[n_fft // 2 + 1, n_mels]` (float64 numpy constant).

  Equals `librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
  fmax=fmax).T`: triangles spaced evenly on the Slaney mel scale, each scaled to unit area
  (`norm="slaney"`). Multiply a time-major power spectrogram by it: `power @ filterbank`.
  """
  fmax = _check_mel(sample_rate, n_fft, n_mels, fmin, fmax)
  edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
  bins = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
  widths = np.diff(edges)
  ramps = edges[:, None] - bins[None, :]
  rising = -ramps[:-2] / widths[:-1, None]
  falling = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
  return weights.T


def power_to_db(power: jax.Array, *, amin: float = 1e-10,
                top_db: Optional[float] = 80.0) -> jax.Array:
  """`10 log10(max(power, amin))`, floored at `top_db` below each example's maximum.

  Equals `librosa.power_to_db(power, ref=1.0, amin=amin, top_db=top_db)` per example. The
  maximum is taken over the last two axes (`[..., frames, bins]`), so leading axes are a batch.
  Clamping before the log keeps the gradient finite (zero) on digital silence.

  Args:
    power: non-negative `[..., frames, bins]`.
    amin: floor of the power before the log.
    top_db: dynamic range kept below the maximum; `None` for no floor.
  """
  db = 10.0 * jnp.log10(jnp.maximum(power, amin))
  if top_db is None:
    return db
  return jnp.maximum(db, jnp.max(db, axis=(-2, -1), keepdims=True) - top_db)


def min_max_scale(x: jax.Array) -> jax.Array:
  """Scales each example `[..., frames, bins]` to [0, 1]: `(x - min) / (max - min)`.

  The minimum and maximum are over the last two axes (all frames and bins of an example), so
  leading axes are a batch. A constant example (digital silence: `max == min`) gives zeros, with a
  zero gradient, instead of 0 / 0; NaN or infinite values still give NaN.

  Args:
    x: `[..., frames, bins]`, e.g. a log-mel in dB.

  Returns:
    `x` scaled, same shape and dtype.
  """
  low = jnp.min(x, axis=(-2, -1), keepdims=True)
  span = jnp.max(x, axis=(-2, -1), keepdims=True) - low
  constant = span == 0
  # Divide by 1 where the span is 0, so that neither branch of `where` (nor its gradient) is NaN.
  scaled = (x - low) / jnp.where(constant, jnp.ones_like(span), span)
  return jnp.where(constant, jnp.zeros_like(x), scaled)


def log_mel(*, sample_rate: float, n_fft: int, hop_length: int, n_mels: int,
            win_length: Optional[int] = None, window: str = "hann", fmin: float = 0.0,
            fmax: Optional[float] = None, top_db: Optional[float] = 80.0, center: bool = True,
            pad_mode: str = "constant", precise: bool = False, scaling: Optional[str] = None,
            num_frames: Optional[int] = None) -> Callable[[jax.Array], jax.Array]:
  """Returns a pure log-mel front end `f(waveform[samples]) -> [frames, n_mels]` in dB.

  `f(y)` equals `librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sample_rate,
  n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window, n_mels=n_mels,
  fmin=fmin, fmax=fmax, center=center, pad_mode=pad_mode), ref=1.0, top_db=top_db).T`, then
  `min_max_scale`d with `scaling="min_max"`. It is jit-, vmap- and grad-able; the filterbank and
  the window are built once here and closed over as constants.

  Args:
    sample_rate: sampling rate in Hz.
    n_fft: FFT size and frame length.
    hop_length: samples between frames.
    n_mels: number of mel bands, at most `n_fft // 2`.
    win_length: window length, `1 <= win_length <= n_fft`, zero-padded on both sides to `n_fft`
      as in `librosa.stft`; `None` (the default) for `n_fft`.
    window: periodic window, one of `WINDOWS` ("hann", the default, or "hamming").
    fmin: lowest band edge in Hz.
    fmax: highest band edge in Hz, at most (and by default) `sample_rate / 2`.
    top_db: dynamic range in dB kept below the example's maximum; `None` for no floor.
    center: centre frames on `t * hop_length` by padding `n_fft // 2` on both sides.
    pad_mode: padding for `center=True`, one of `PAD_MODES`.
    precise: False (the default) takes the float32 FFT, within ~0.01 dB of librosa's float64
      log-mel; True the double-float FFT (see `stft`), within ~1e-4 dB even on a faint band
      next to a strong tone, and 3-5x slower on CPU.
    scaling: one of `SCALINGS`: `None` keeps dB; `"min_max"` maps each example to [0, 1] by
      `min_max_scale` over all its frames and bands (the per-clip normalisation of sound event
      detection papers), zeros for a constant log-mel such as digital silence. librosa's
      `ref=np.max` only shifts an example's dB (and its top_db floor) by a constant, which the
      scaling removes, so it gives the same result as the `ref=1.0` used here.
    num_frames: cut (or zero-pad at the end) the scaled output to this many frames, as the sound
      event detection papers fit every clip to a model's fixed input (500 frames for 10 s at 50
      frames/s, where `center=True` makes 501); `None` keeps every frame.

  Returns:
    `f(waveform) -> log_mel` for one unbatched 1-D waveform of at least `n_fft` samples; batch it
    with `jax.vmap`. NaN or infinite samples make the whole example NaN (the top_db floor is
    relative to the example's maximum); `soundjax.checks.checked(f)` raises on them instead.

  Raises:
    ValueError: an invalid argument; when `f` is traced, a waveform that is not 1-D or has fewer
      than `n_fft` samples (empty included), whatever `center`.

  Example:
    >>> f = log_mel(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=64)
    >>> features = jax.jit(jax.vmap(f))(waveforms)  # [batch, frames, 64]
  """
  filterbank = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                              fmax=fmax)
  check_framing(n_fft, hop_length, pad_mode)
  window_function(window, win_length, n_fft)  # Validates; stft rebuilds it (cheap) when traced.
  if top_db is not None and top_db < 0:
    raise ValueError(f"top_db must be non-negative or None, got {top_db}")
  checks.optional_integer("num_frames", num_frames)
  checks.one_of("scaling", scaling, SCALINGS)

  def f(waveform: jax.Array) -> jax.Array:
    waveform = jnp.asarray(waveform)
    if waveform.ndim != 1:
      raise ValueError(f"soundjax.frontend.log_mel: waveform must be 1-D [samples], got shape "
                       f"{waveform.shape}; batch with jax.vmap")
    # librosa warns (center=True) or fails (center=False) below one window; the frames of a
    # shorter clip would be mostly padding, so it is refused here, when f is traced.
    if waveform.shape[0] < n_fft:
      what = "is empty" if waveform.shape[0] == 0 else f"has {waveform.shape[0]} samples"
      raise ValueError(f"soundjax.frontend.log_mel: the waveform {what}, shorter than one frame; "
                       f"it needs at least n_fft = {n_fft} samples (pad the clip or lower n_fft)")
    power = power_spectrogram(waveform, n_fft=n_fft, hop_length=hop_length,
                              win_length=win_length, window=window, center=center,
                              pad_mode=pad_mode, precise=precise)
    # HIGHEST keeps full float32 products on accelerators, whose default is bfloat16/TF32.
    mel = jnp.matmul(power, jnp.asarray(filterbank, power.dtype),
                     precision=jax.lax.Precision.HIGHEST)
    features = power_to_db(mel, top_db=top_db)
    features = min_max_scale(features) if scaling == "min_max" else features
    if num_frames is None:
      return features
    return jnp.pad(features[:num_frames], ((0, max(0, num_frames - features.shape[0])), (0, 0)))

  return f
