"""Windowed real FFT in double-float arithmetic: every bin to float32 relative precision.

Used by `soundjax.frontend.stft(precise=True)` so that a float32 log-mel matches librosa's
float64 one within ~1e-5 dB even for weak bands next to strong ones. The window is any float64
numpy constant of the frame length (built by `stft.window_function`), closed over, never traced.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _check_window(frames: jax.Array, window: np.ndarray) -> np.ndarray:
  window = np.asarray(window, np.float64)
  if window.shape != frames.shape[-1:]:
    raise ValueError(f"the window must have the frame length {frames.shape[-1]}, got shape "
                     f"{window.shape}")
  return window


def plain_rfft(frames: jax.Array, window: np.ndarray) -> jax.Array:
  """`rfft(frames * window)` over the last axis with `jnp.fft` (float32 or float64 frames).

  Args:
    frames: `[..., n]`.
    window: float64 numpy constant `[n]`, rounded to the frames' dtype.
  """
  window = jnp.asarray(_check_window(frames, window), frames.dtype)
  return jnp.fft.rfft(frames * window[(None,) * (frames.ndim - 1)], axis=-1)


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


def _df_rfft(frames: jax.Array, window: np.ndarray) -> jax.Array:
  """`rfft(frames * window)` over the last axis (a power of two >= 4) in double-float arithmetic.

  The real transform of length `n` is a complex one of length `n / 2` on (even, odd) samples,
  untangled with `X[k] = E[k] + exp(-2 pi i k / n) O[k]`.
  """
  n, ndim = frames.shape[-1], frames.ndim
  windowed = _df_scale((frames, jnp.zeros_like(frames)), _df_constant(window, ndim))
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


# Frames per loop step of the double-float FFT: its ~12 passes then stay in cache, which is
# about twice as fast on CPU as streaming every pass through memory.
_CHUNK_FRAMES = 8


def precise_rfft(frames: jax.Array, window: np.ndarray) -> jax.Array:
  """`rfft(frames * window)` of float32 frames `[..., n]` with every bin to float32 precision.

  `n` must be a power of two >= 4. The transform is linear, so its derivative is the transform of
  the tangent: the plain float32 one (`plain_rfft`), about 3x cheaper, since a gradient needs no
  more than float32 accuracy.

  Args:
    frames: float32 `[..., n]`.
    window: float64 numpy constant `[n]`; its double-float split is baked into the program.
  """
  window = _check_window(frames, window)

  # A custom_jvp per window: the window is a closed-over constant, not an argument to trace.
  @jax.custom_jvp
  def transform(frames: jax.Array) -> jax.Array:
    n = frames.shape[-1]
    flat = jnp.reshape(frames, (-1, n))
    count = flat.shape[0]
    chunk = min(_CHUNK_FRAMES, count)
    chunks = -(-count // chunk)
    flat = jnp.pad(flat, ((0, chunks * chunk - count), (0, 0)))
    spectra = jax.lax.map(lambda block: _df_rfft(block, window),
                          jnp.reshape(flat, (chunks, chunk, n)))
    spectra = jnp.reshape(spectra, (chunks * chunk, n // 2 + 1))[:count]
    return jnp.reshape(spectra, frames.shape[:-1] + (n // 2 + 1,))

  @transform.defjvp
  def _transform_jvp(primals, tangents):
    return transform(primals[0]), plain_rfft(tangents[0], window)

  return transform(frames)
