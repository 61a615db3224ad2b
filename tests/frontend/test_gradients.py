"""Gradients of the front end against central finite differences of librosa in float64.

The reference never runs the code under test: librosa computes the STFT, power and log-mel in
float64 numpy, and a central difference of a random projection `v . f(x)` gives the gradient
along every sample. Both the float32 paths (the double-float FFT, whose derivative is a custom
JVP, and the plain float32 FFT) and the float64 path (taken for float64 input under x64) are
checked. Shapes are tiny so that a case compiles and runs in about a second.
"""

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from soundjax import frontend
from tests.finite_differences import central_differences

SAMPLES = 90
# A step of 1e-5 on a signal of unit scale: truncation error ~1e-10, rounding ~1e-11 (float64).
STEP = 1e-5


def _signal(seed: int = 0) -> np.ndarray:
  """Noise plus a tone, exactly representable in float32 so both paths see the same point."""
  rng = np.random.default_rng(seed)
  t = np.arange(SAMPLES) / 8000.0
  y = 0.3 * rng.standard_normal(SAMPLES) + 0.5 * np.sin(2 * np.pi * 900.0 * t)
  return y.astype(np.float32).astype(np.float64)


def _librosa_stft(y, *, n_fft, hop_length, win_length=None, window="hann", center=True,
                  pad_mode="constant"):
  return librosa.stft(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                      window=window, center=center, pad_mode=pad_mode).T


def _librosa_power(y, **kwargs):
  return np.abs(_librosa_stft(y, **kwargs)) ** 2


def _librosa_log_mel(y, *, sample_rate, n_fft, hop_length, n_mels, win_length=None,
                     window="hann", fmin=0.0, fmax=None, top_db=80.0, center=True,
                     pad_mode="constant", scaling=None):
  mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
                                       win_length=win_length, window=window, n_mels=n_mels,
                                       fmin=fmin, fmax=fmax, center=center, pad_mode=pad_mode)
  db = librosa.power_to_db(mel, ref=1.0, top_db=top_db).T
  if scaling == "min_max":
    db = (db - db.min()) / (db.max() - db.min())
  return db


def _project(out, v):
  """`Re(v) . Re(out) + Im(v) . Im(out)` (`v . out` for real ones), jnp or numpy alike."""
  if np.iscomplexobj(v):
    return (v.real * out.real).sum() + (v.imag * out.imag).sum()
  return (v * out).sum()


def _projection(shape, complex_output, seed=1):
  rng = np.random.default_rng(seed)
  v = rng.standard_normal(shape)
  return v + 1j * rng.standard_normal(shape) if complex_output else v


def _gradients(fn, reference, x):
  """`(float32 autodiff, float64 autodiff, finite differences)` of a random projection."""
  want = reference(x)
  v = _projection(want.shape, np.iscomplexobj(want))
  x = np.array(x, np.float64)
  (fd,) = central_differences(lambda: _project(reference(x), v), [x], eps=STEP)
  v32 = (v.astype(np.complex64) if np.iscomplexobj(v) else v.astype(np.float32))
  grad32 = jax.jit(jax.grad(lambda y: _project(fn(y), v32)))(jnp.asarray(x, jnp.float32))
  assert grad32.dtype == jnp.float32
  with jax.enable_x64(True):
    grad64 = jax.jit(jax.grad(lambda y: _project(fn(y), v)))(jnp.asarray(x, jnp.float64))
    assert grad64.dtype == jnp.float64  # float64 input keeps float64 (the jnp.fft path)
    grad64 = np.asarray(grad64)
  return np.asarray(grad32, np.float64), grad64, fd


def _assert_close(grad32, grad64, fd):
  scale = np.max(np.abs(fd))
  assert scale > 0
  # float32 carries ~1e-7 relative error per value; a gradient 1% off misses by ~1e-2.
  np.testing.assert_allclose(grad32, fd, rtol=0, atol=2e-5 * scale)
  np.testing.assert_allclose(grad64, fd, rtol=0, atol=1e-6 * scale)


SMALL = dict(sample_rate=8000, n_fft=32, hop_length=12, n_mels=6)


@pytest.mark.parametrize("options", [
    dict(top_db=None),  # the default float32 FFT
    dict(top_db=None, precise=True),  # n_fft a power of two: the double-float FFT, custom JVP
    dict(top_db=None, n_fft=24, hop_length=10, pad_mode="reflect"),  # not a power of two
    dict(top_db=None, center=False, hop_length=16),
    dict(top_db=80.0, fmin=200.0, fmax=3500.0),
    # The custom JVP's tangent must take the same (Hamming, zero-padded) window as the primal.
    dict(top_db=None, window="hamming", win_length=27, precise=True),
    dict(top_db=None, window="hamming", win_length=27, scaling="min_max"),
], ids=str)
def test_log_mel_gradient_matches_central_differences_of_librosa(options):
  config = {**SMALL, **options}
  precise = config.pop("precise", False)
  f = frontend.log_mel(**config, precise=precise)
  _assert_close(*_gradients(f, lambda y: _librosa_log_mel(y, **config), _signal()))


def test_log_mel_gradient_through_the_top_db_floor():
  # With a 12 dB range some bands sit on the floor `max - 12`: their gradient is the gradient
  # of the maximum, which the finite differences see as well.
  config = {**SMALL, "top_db": 12.0}
  x = _signal(2)
  db = _librosa_log_mel(x, **config)
  floor = db.max() - 12.0
  floored = np.isclose(db, floor, rtol=0, atol=1e-9)
  assert 0 < floored.sum() < db.size - 1
  # No band is within a finite-difference step of the kink.
  unfloored = _librosa_log_mel(x, **{**config, "top_db": None})
  assert np.min(np.abs(unfloored - floor)) > 1e-3
  _assert_close(*_gradients(frontend.log_mel(**config), lambda y: _librosa_log_mel(y, **config),
                            x))


@pytest.mark.parametrize("n_fft, hop_length, precise",
                         [(32, 12, False), (32, 12, True), (24, 10, False)])
def test_stft_gradient_matches_central_differences_of_librosa(n_fft, hop_length, precise):
  kwargs = dict(n_fft=n_fft, hop_length=hop_length)
  fn = lambda y: frontend.stft(y, **kwargs, precise=precise)
  _assert_close(*_gradients(fn, lambda y: _librosa_stft(y, **kwargs), _signal()))


@pytest.mark.parametrize("pad_mode", ["constant", "edge"])
def test_power_spectrogram_gradient_matches_central_differences_of_librosa(pad_mode):
  kwargs = dict(n_fft=32, hop_length=12, pad_mode=pad_mode)
  fn = lambda y: frontend.power_spectrogram(y, **kwargs)
  _assert_close(*_gradients(fn, lambda y: _librosa_power(y, **kwargs), _signal(3)))
