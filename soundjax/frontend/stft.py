"""Framing, windows, STFT and power spectrogram, equal to librosa's.

The window is a periodic Hann (the default) or Hamming window of `win_length <= n_fft` samples,
zero-padded on both sides to `n_fft`, as `librosa.stft` builds it. The pieces accept leading batch
axes (`[..., samples]`) and are time-major (`[..., frames, bins]`, the transpose of librosa's
layout).
"""

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from soundjax import checks
from soundjax.frontend._double_float import plain_rfft, precise_rfft

PAD_MODES = ("constant", "edge", "reflect", "symmetric")
# The windows `stft` takes, by their scipy / librosa names, with the cosine coefficients (a0, a1)
# of `a0 - a1 cos(2 pi n / N)`.
_COSINE_WINDOWS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46)}
WINDOWS = tuple(_COSINE_WINDOWS)


def check_framing(n_fft: int, hop_length: int, pad_mode: str) -> None:
  """Raises `ValueError` unless the framing arguments are valid."""
  checks.integer("n_fft", n_fft)
  checks.integer("hop_length", hop_length)
  checks.one_of("pad_mode", pad_mode, PAD_MODES)


def window_function(name: str, win_length: Optional[int], n_fft: int) -> np.ndarray:
  """The STFT window `[n_fft]` (float64 numpy constant), as `librosa.stft` builds it.

  Equals `librosa.util.pad_center(scipy.signal.get_window(name, win_length, fftbins=True),
  size=n_fft)`: the periodic window of `win_length` samples (`a0 - a1 cos(2 pi n / win_length)`,
  the form an FFT of that length expects; `[1.0]` for one sample), zero-padded on both sides to
  `n_fft`, the extra zero on the right when `n_fft - win_length` is odd.

  Args:
    name: one of `WINDOWS` ("hann", "hamming").
    win_length: samples of the window proper, `1 <= win_length <= n_fft`; `None` for `n_fft`.
    n_fft: frame length.

  Raises:
    ValueError: naming `window` or `win_length` when it is invalid.
  """
  checks.one_of("window", name, WINDOWS)
  checks.integer("n_fft", n_fft)
  win_length = n_fft if win_length is None else checks.integer("win_length", win_length)
  if win_length > n_fft:
    raise ValueError(f"win_length must be an integer in [1, n_fft = {n_fft}] or None (= n_fft), "
                     f"got {win_length}")
  a0, a1 = _COSINE_WINDOWS[name]
  window = a0 - a1 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
  if win_length == 1:
    window = np.ones(1)  # scipy's (and so librosa's) convention for a one-sample window.
  left = (n_fft - win_length) // 2
  return np.pad(window, (left, n_fft - win_length - left))


def num_frames(num_samples: int, *, n_fft: int, hop_length: int, center: bool = True) -> int:
  """Number of STFT frames of a `num_samples` signal, as in `librosa.stft`.

  Raises:
    ValueError: if the signal is empty, or if `center=False` and it is shorter than one frame.
  """
  if num_samples < 1:
    raise ValueError("the signal is empty (0 samples); it needs at least one sample, and "
                     f"n_fft={n_fft} for center=False")
  padded = num_samples + 2 * (n_fft // 2) if center else num_samples
  if padded < n_fft:
    raise ValueError(f"a signal of {num_samples} samples is shorter than n_fft={n_fft}; "
                     "use center=True or a longer signal")
  return 1 + (padded - n_fft) // hop_length


def frame(x: jax.Array, *, n_fft: int, hop_length: int, center: bool = True,
          pad_mode: str = "constant") -> jax.Array:
  """Slices `x[..., samples]` into overlapping frames `[..., frames, n_fft]`.

  With `center=True` the signal is padded by `n_fft // 2` on both sides with `pad_mode`
  (`np.pad` semantics), so that frame `t` is centred on sample `t * hop_length`.

  Args:
    x: signal with any leading batch axes.
    n_fft: frame length.
    hop_length: samples between the starts of consecutive frames.
    center: pad so that frames are centred, as `librosa.stft(center=True)`.
    pad_mode: one of `PAD_MODES`.

  Returns:
    `[..., num_frames(x.shape[-1], ...), n_fft]`.
  """
  check_framing(n_fft, hop_length, pad_mode)
  x = jnp.asarray(x)
  count = num_frames(x.shape[-1], n_fft=n_fft, hop_length=hop_length, center=center)
  if center:
    widths = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    x = jnp.pad(x, widths, mode=pad_mode)
  length = (count - 1 + -(-n_fft // hop_length)) * hop_length  # whole hops that hold the frames
  if x.shape[-1] < length:
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])
  return _overlapping(x[..., :length], n_fft, hop_length, count)


def _by_slices(x: jax.Array, n_fft: int, hop_length: int, count: int) -> jax.Array:
  """The frames of `x` (its length a whole number of hops) as contiguous slices: frame t is rows
  t..t+k-1 of the signal cut into hop-long rows, concatenated."""
  chunks = -(-n_fft // hop_length)
  x = jnp.reshape(x, x.shape[:-1] + (x.shape[-1] // hop_length, hop_length))
  return jnp.concatenate([x[..., c:c + count, :] for c in range(chunks)], axis=-1)[..., :n_fft]


# Forward a gather, backward the transpose of `_by_slices` (an overlap-add of a few shifted
# slices). Measured on 2 CPU cores for 64 four-second clips (1024 / 512): the gather frames in
# 15 ms against the slices' 37 ms, but its own transpose (a scatter-add) made the gradient of
# frames + FFT 103 ms against the slices' 79 ms.
@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _overlapping(x: jax.Array, n_fft: int, hop_length: int, count: int) -> jax.Array:
  index = np.arange(count)[:, None] * hop_length + np.arange(n_fft)[None, :]
  return x[..., index]


def _overlapping_forward(x, n_fft, hop_length, count):
  return _overlapping(x, n_fft, hop_length, count), None


def _overlapping_backward(n_fft, hop_length, count, _, cotangent):
  length = (count - 1 + -(-n_fft // hop_length)) * hop_length
  signal = jax.ShapeDtypeStruct(cotangent.shape[:-2] + (length,), cotangent.dtype)
  transpose = jax.linear_transpose(
      functools.partial(_by_slices, n_fft=n_fft, hop_length=hop_length, count=count), signal)
  return transpose(cotangent)


_overlapping.defvjp(_overlapping_forward, _overlapping_backward)


def stft(x: jax.Array, *, n_fft: int, hop_length: int, win_length: Optional[int] = None,
         window: str = "hann", center: bool = True, pad_mode: str = "constant",
         precise: bool = False) -> jax.Array:
  """Complex STFT `[..., frames, n_fft // 2 + 1]` with a periodic Hann or Hamming window.

  Equals `librosa.stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
  window=window, center=center, pad_mode=pad_mode).T` (for 1-D `x`); the window is
  `window_function(window, win_length, n_fft)`. The transform is `jnp.fft.rfft` in float32
  (float64 for float64 `x`): each bin is accurate to ~1e-7 of its frame's norm, so a log-mel is
  within ~0.01 dB of librosa's float64 one (a faint band next to a strong tone is the worst
  case). `precise=True`, for float32 input and `n_fft` a power of two (>= 4), runs the transform
  in double-float arithmetic instead, 3-5x slower on CPU, so that every bin, however weak next to
  a strong one, has float32 relative accuracy; its gradient uses the plain float32 FFT.

  Raises:
    ValueError: an invalid argument, named (`window` lists `WINDOWS`).
  """
  fft_window = window_function(window, win_length, n_fft)
  x = jnp.asarray(x)
  if x.dtype != jnp.float64:
    x = x.astype(jnp.float32)
  frames = frame(x, n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)
  if precise and x.dtype == jnp.float32 and n_fft >= 4 and n_fft & (n_fft - 1) == 0:
    return precise_rfft(frames, fft_window)
  return plain_rfft(frames, fft_window)


def power_spectrogram(x: jax.Array, *, n_fft: int, hop_length: int,
                      win_length: Optional[int] = None, window: str = "hann", center: bool = True,
                      pad_mode: str = "constant", precise: bool = False) -> jax.Array:
  """Power `|stft(x)|^2` as `[..., frames, n_fft // 2 + 1]`, float32 (float64 for float64 `x`).

  Takes `stft`'s arguments. Squares the real and imaginary parts instead of taking `abs(.)**2`:
  same value, but the gradient stays finite where the spectrum is exactly zero.
  """
  spectrum = stft(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                  center=center, pad_mode=pad_mode, precise=precise)
  return jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum))
