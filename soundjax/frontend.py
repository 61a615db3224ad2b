"""Differentiable audio front end: framing, STFT, Slaney mel filterbank and log-mel.

`log_mel(...)` returns a pure per-example function `waveform[samples] -> [frames, n_mels]` equal to
`librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0, top_db=top_db).T` (periodic
Hann window, Slaney mel scale and norm). The pieces below accept leading batch axes
(`[..., samples]`), are time-major (`[..., frames, bins]`, the transpose of librosa's layout) and
can be used inside a waveform model, so that gradients flow from the model back to the audio.
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _check_positive_int(name: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_framing(n_fft: int, hop_length: int, pad_mode: str) -> None:
  _check_positive_int("n_fft", n_fft)
  _check_positive_int("hop_length", hop_length)
  if pad_mode not in PAD_MODES:
    raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")


def num_frames(num_samples: int, *, n_fft: int, hop_length: int, center: bool = True) -> int:
  """Number of STFT frames of a `num_samples` signal, as in `librosa.stft`.

  Raises:
    ValueError: if `center=False` and the signal is shorter than one frame.
  """
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
  _check_framing(n_fft, hop_length, pad_mode)
  x = jnp.asarray(x)
  count = num_frames(x.shape[-1], n_fft=n_fft, hop_length=hop_length, center=center)
  if center:
    widths = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    x = jnp.pad(x, widths, mode=pad_mode)
  # Frame t is rows t..t+k-1 of the signal cut into hop-long rows: k contiguous slices and a
  # concatenation instead of a gather, so that the backward pass is a few adds, not a scatter.
  chunks = -(-n_fft // hop_length)
  rows = count - 1 + chunks
  length = rows * hop_length
  if x.shape[-1] < length:
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])
  x = jnp.reshape(x[..., :length], x.shape[:-1] + (rows, hop_length))
  frames = jnp.concatenate([x[..., c:c + count, :] for c in range(chunks)], axis=-1)
  return frames[..., :n_fft]


def hann_window(n_fft: int) -> np.ndarray:
  """Periodic Hann window of length `n_fft` (`scipy.signal.get_window("hann", n_fft)`), float64."""
  return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


# A float32 FFT is accurate to ~1e-7 of the frame's norm, so weak bins next to a strong tone
# lose precision: up to ~0.01 dB near the top_db floor of a log-mel. The windowed FFT below runs
# in double-float arithmetic instead: a value is an unevaluated sum `hi + lo` of float32s, where
# `lo` collects the rounding errors of `hi` (not renormalised), captured exactly by Knuth's
# two-sum and by products of 12-bit halves. Those products are exact in float32, so FMA
# contraction cannot change them on any backend. The result is within ~1e-10 of the frame's norm.


def _split(a: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`a == hi + lo` exactly, both with at most 12 significant bits (masking, no rounding)."""
  bits = jax.lax.bitcast_convert_type(a, jnp.uint32) & jnp.uint32(0xFFFFF000)
  hi = jax.lax.bitcast_convert_type(bits, jnp.float32)
  return hi, a - hi


def _df_add(x, y):
  s = x[0] + y[0]
  v = s - x[0]
  return s, ((x[0] - (s - v)) + (y[0] - v)) + (x[1] + y[1])  # Knuth: exact error of `s`


def _df_sub(x, y):
  return _df_add(x, (-y[0], -y[1]))


def _df_scale(x, c):
  """`x * c` for a double-float constant `c` whose `hi` part has 12 significant bits."""
  xh, xl = _split(x[0])
  p, q = xh * c[0], xl * c[0]  # exact, |p| >= |q|
  s = p + q
  # `x[1]` can reach ~2^-11 of `x[0]`, so it is multiplied by all of `c` (`c[0] + c[1]`).
  return s, (q - (s - p)) + (x[0] * c[1] + x[1] * (c[0] + c[1]))


def _df_cmul(xr, xi, cr, ci):
  return (_df_sub(_df_scale(xr, cr), _df_scale(xi, ci)),
          _df_add(_df_scale(xr, ci), _df_scale(xi, cr)))


def _df_constant(values: np.ndarray, ndim: int) -> tuple[jax.Array, jax.Array]:
  """float64 constants as `(hi, lo)` float32 arrays of rank `ndim` (leading axes of size 1)."""
  values = np.asarray(values, np.float64)
  hi = (values.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFF000)).view(np.float32)
  lo = (values - hi).astype(np.float32)
  shape = (1,) * (ndim - values.ndim) + values.shape
  return jnp.asarray(hi.reshape(shape)), jnp.asarray(lo.reshape(shape))


# Double-floats are carried as complex64 `hi + i lo` so that XLA computes both halves of a value
# in one fused loop instead of two.
def _pack(x) -> jax.Array:
  return jax.lax.complex(x[0], x[1])


def _unpack(z: jax.Array):
  return jnp.real(z), jnp.imag(z)


def _df_fft_bit_reversed(re: jax.Array, im: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Complex DFT over the last axis (a power of two) of packed double-floats, bit-reversed.

  Constant-geometry radix-2 (Pease): every stage combines the two halves and interleaves the
  results, so all stages share one shape and run as one compiled `lax.scan` step.
  """
  size, ndim = re.shape[-1], re.ndim
  half = size // 2
  q = np.arange(half)
  angles = np.stack([-2.0 * np.pi * ((q >> s) << s) / size
                     for s in range(size.bit_length() - 1)])

  def stage(carry, twiddle):
    re, im = carry
    cr, ci = jax.tree.map(lambda t: jnp.reshape(t, (1,) * (ndim - 1) + (half,)), twiddle)
    ar, ai = _unpack(re[..., :half]), _unpack(im[..., :half])
    br, bi = _unpack(re[..., half:]), _unpack(im[..., half:])
    dr, di = _df_cmul(_df_sub(ar, br), _df_sub(ai, bi), cr, ci)

    def interleave(u, v):
      return jnp.reshape(jnp.stack([_pack(u), _pack(v)], axis=-1), re.shape)

    return (interleave(_df_add(ar, br), dr), interleave(_df_add(ai, bi), di)), None

  twiddles = _df_constant(np.cos(angles), 2), _df_constant(np.sin(angles), 2)
  return jax.lax.scan(stage, (re, im), twiddles)[0]


def _df_hann_rfft(frames: jax.Array) -> jax.Array:
  """`rfft(frames * hann)` over the last axis (a power of two >= 4) in double-float arithmetic.

  The real transform of length `n` is a complex one of length `n / 2` on (even, odd) samples,
  untangled with `X[k] = E[k] + exp(-2 pi i k / n) O[k]`.
  """
  n, ndim = frames.shape[-1], frames.ndim
  windowed = _df_scale((frames, jnp.zeros_like(frames)), _df_constant(hann_window(n), ndim))
  z_re, z_im = _df_fft_bit_reversed(_pack(tuple(t[..., 0::2] for t in windowed)),
                                    _pack(tuple(t[..., 1::2] for t in windowed)))
  m = n // 2
  bits = m.bit_length() - 1
  reverse = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(m)])
  k = np.arange(m + 1)
  # Z[k] and Z[m - k] (indices mod m) in natural order, from the bit-reversed output.
  a_re, a_im, b_re, b_im = (_unpack(jnp.take(z, reverse[idx], axis=-1))
                            for z, idx in ((z_re, k % m), (z_im, k % m),
                                           (z_re, -k % m), (z_im, -k % m)))
  halve = lambda x: (0.5 * x[0], 0.5 * x[1])
  even = halve(_df_add(a_re, b_re)), halve(_df_sub(a_im, b_im))
  odd = halve(_df_add(a_im, b_im)), halve(_df_sub(b_re, a_re))
  angles = -2.0 * np.pi * k / n
  t_re, t_im = _df_cmul(*odd, _df_constant(np.cos(angles), ndim),
                        _df_constant(np.sin(angles), ndim))
  x_re, x_im = _df_add(even[0], t_re), _df_add(even[1], t_im)
  return jax.lax.complex(x_re[0] + x_re[1], x_im[0] + x_im[1])


def _plain_hann_rfft(frames: jax.Array) -> jax.Array:
  window = jnp.asarray(hann_window(frames.shape[-1]), frames.dtype)
  return jnp.fft.rfft(frames * window[(None,) * (frames.ndim - 1)], axis=-1)


# Frames per loop step of the double-float FFT: its ~12 passes then stay in cache, which is
# about twice as fast on CPU as streaming every pass through memory.
_CHUNK_FRAMES = 8


@jax.custom_jvp
def _precise_hann_rfft(frames: jax.Array) -> jax.Array:
  """`rfft(frames * hann)` of float32 frames `[..., n]` with every bin to float32 precision."""
  n = frames.shape[-1]
  flat = jnp.reshape(frames, (-1, n))
  count = flat.shape[0]
  chunk = min(_CHUNK_FRAMES, count)
  chunks = -(-count // chunk)
  flat = jnp.pad(flat, ((0, chunks * chunk - count), (0, 0)))
  spectra = jax.lax.map(_df_hann_rfft, jnp.reshape(flat, (chunks, chunk, n)))
  spectra = jnp.reshape(spectra, (chunks * chunk, n // 2 + 1))[:count]
  return jnp.reshape(spectra, frames.shape[:-1] + (n // 2 + 1,))


@_precise_hann_rfft.defjvp
def _precise_hann_rfft_jvp(primals, tangents):
  # The transform is linear: its derivative is the (cheap, float32) transform of the tangent.
  return _precise_hann_rfft(primals[0]), _plain_hann_rfft(tangents[0])


def stft(x: jax.Array, *, n_fft: int, hop_length: int, center: bool = True,
         pad_mode: str = "constant") -> jax.Array:
  """Complex STFT `[..., frames, n_fft // 2 + 1]` with a periodic Hann window.

  Equals `librosa.stft(x, n_fft=n_fft, hop_length=hop_length, center=center,
  pad_mode=pad_mode).T` (for 1-D `x`). For float32 input and `n_fft` a power of two (>= 4) the
  transform runs in double-float arithmetic, so that every bin, however weak next to a strong
  one, has float32 relative accuracy; its gradient uses the plain float32 FFT. Other sizes and
  float64 input use `jnp.fft.rfft`.
  """
  x = jnp.asarray(x)
  if x.dtype != jnp.float64:
    x = x.astype(jnp.float32)
  frames = frame(x, n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)
  if x.dtype == jnp.float32 and n_fft >= 4 and n_fft & (n_fft - 1) == 0:
    return _precise_hann_rfft(frames)
  return _plain_hann_rfft(frames)


def power_spectrogram(x: jax.Array, *, n_fft: int, hop_length: int, center: bool = True,
                      pad_mode: str = "constant") -> jax.Array:
  """Power `|stft(x)|^2` as `[..., frames, n_fft // 2 + 1]`, float32 (float64 for float64 `x`).

  Squares the real and imaginary parts instead of taking `abs(.)**2`: same value, but the
  gradient stays finite where the spectrum is exactly zero.
  """
  spectrum = stft(x, n_fft=n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)
  return jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum))


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
  if not sample_rate > 0:
    raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
  _check_positive_int("n_fft", n_fft)
  _check_positive_int("n_mels", n_mels)
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


def log_mel(*, sample_rate: float, n_fft: int, hop_length: int, n_mels: int, fmin: float = 0.0,
            fmax: Optional[float] = None, top_db: Optional[float] = 80.0, center: bool = True,
            pad_mode: str = "constant") -> Callable[[jax.Array], jax.Array]:
  """Returns a pure log-mel front end `f(waveform[samples]) -> [frames, n_mels]` in dB.

  `f(y)` equals `librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sample_rate,
  n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, center=center,
  pad_mode=pad_mode), ref=1.0, top_db=top_db).T`. It is jit-, vmap- and grad-able; the
  filterbank is built once here and closed over as a constant.

  Args:
    sample_rate: sampling rate in Hz.
    n_fft: FFT size and window length.
    hop_length: samples between frames.
    n_mels: number of mel bands, at most `n_fft // 2`.
    fmin: lowest band edge in Hz.
    fmax: highest band edge in Hz, at most (and by default) `sample_rate / 2`.
    top_db: dynamic range in dB kept below the example's maximum; `None` for no floor.
    center: centre frames on `t * hop_length` by padding `n_fft // 2` on both sides.
    pad_mode: padding for `center=True`, one of `PAD_MODES`.

  Returns:
    `f(waveform) -> log_mel` for one unbatched 1-D waveform; batch it with `jax.vmap`.

  Example:
    >>> f = log_mel(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=64)
    >>> features = jax.jit(jax.vmap(f))(waveforms)  # [batch, frames, 64]
  """
  filterbank = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                              fmax=fmax)
  _check_framing(n_fft, hop_length, pad_mode)
  if top_db is not None and top_db < 0:
    raise ValueError(f"top_db must be non-negative or None, got {top_db}")

  def f(waveform: jax.Array) -> jax.Array:
    waveform = jnp.asarray(waveform)
    if waveform.ndim != 1:
      raise ValueError(f"waveform must be 1-D [samples], got shape {waveform.shape}; "
                       "batch with jax.vmap")
    power = power_spectrogram(waveform, n_fft=n_fft, hop_length=hop_length, center=center,
                              pad_mode=pad_mode)
    # HIGHEST keeps full float32 products on accelerators, whose default is bfloat16/TF32.
    mel = jnp.matmul(power, jnp.asarray(filterbank, power.dtype),
                     precision=jax.lax.Precision.HIGHEST)
    return power_to_db(mel, top_db=top_db)

  return f
