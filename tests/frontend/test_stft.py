"""Tests of the log-mel front end: parity with librosa, windows, transforms, arguments.

librosa runs in float64 on the same float32 signal; the front end runs in float32 and must agree
within 0.01 dB. Signals are half a second (a quarter for the 44.1 kHz Hamming features of the
sound event detection paper) and each configuration is compiled once.
"""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest
import scipy.signal

from soundjax import frontend

TOLERANCE_DB = 0.01
SMALL = dict(sample_rate=8000, n_fft=64, hop_length=24, n_mels=12)


@pytest.fixture(autouse=True)
def strict_dtype_promotion():
  with jax.numpy_dtype_promotion("strict"):
    yield


def reference(y, *, sample_rate, n_fft, hop_length, n_mels, win_length=None, window="hann",
              fmin=0.0, fmax=None, top_db=80.0, center=True, pad_mode="constant"):
  mel = librosa.feature.melspectrogram(
      y=np.asarray(y, np.float64), sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
      win_length=win_length, window=window, n_mels=n_mels, fmin=fmin, fmax=fmax, center=center,
      pad_mode=pad_mode)
  return librosa.power_to_db(mel, ref=1.0, top_db=top_db).T


def signals(sample_rate, samples):
  """Named float32 test signals, from loud tones to digital silence."""
  rng = np.random.default_rng(0)
  t = np.arange(samples) / sample_rate
  nyquist = sample_rate / 2
  impulse = np.zeros(samples)
  impulse[samples // 3] = 1.0
  named = {
      "noise": 0.3 * rng.standard_normal(samples),
      "sine": 0.5 * np.sin(2 * np.pi * 440.0 * t),
      "chirp": 0.5 * np.sin(2 * np.pi * (50.0 * t + 0.45 * nyquist * t**2 / t[-1])),
      "impulse": impulse,
      "near_silence": 1e-6 * rng.standard_normal(samples),
      "silence": np.zeros(samples),
      "dc_and_noise": 0.7 + 1e-3 * rng.standard_normal(samples),
      # A faint low tone next to a loud high one: the case a float32 FFT gets wrong.
      "tone_and_faint_tone": (np.sin(2 * np.pi * 0.49 * nyquist * t)
                              + 1e-4 * np.sin(2 * np.pi * 230.0 * t)),
  }
  return {name: y.astype(np.float32) for name, y in named.items()}


@pytest.mark.parametrize("config", [
    dict(sample_rate=22050, n_fft=1024, hop_length=315, n_mels=40),
    dict(sample_rate=22050, n_fft=1024, hop_length=512, n_mels=64),  # the bench's front end
    dict(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=64),
    dict(sample_rate=44100, n_fft=2048, hop_length=882, n_mels=80),
], ids=lambda c: "{sample_rate}-{n_fft}-{hop_length}-{n_mels}".format(**c))
def test_log_mel_matches_librosa(config):
  named = signals(config["sample_rate"], config["sample_rate"] // 2)
  batch = jnp.asarray(np.stack(list(named.values())))
  features = jax.jit(jax.vmap(frontend.log_mel(**config)))(batch)
  for (name, y), got in zip(named.items(), np.asarray(features)):
    want = reference(y, **config)
    assert got.shape == want.shape, name
    assert np.max(np.abs(got - want)) < TOLERANCE_DB, name


def _harmonic_tone_and_noise(samples, sample_rate):
  """A decaying voiced tone, harmonics 2 dB apart up to Nyquist, over faint noise."""
  rng = np.random.default_rng(0)
  t = np.arange(samples) / sample_rate
  harmonics = np.arange(1, int(sample_rate / 2 / 196.0))[:, None]
  tone = np.sum(0.8**harmonics * np.sin(2 * np.pi * 196.0 * harmonics * t
                                        + rng.uniform(0, 2 * np.pi, harmonics.shape)), axis=0)
  return 0.3 * np.exp(-2.0 * t) * tone + 3e-4 * rng.standard_normal(samples)


def test_default_log_mel_is_within_a_hundredth_of_a_db_on_natural_and_noise_signals():
  # One second at the bench's 22.05 kHz, 1024 / 512, 64 mels; the fading noise spans 90 dB, so
  # bands just above the top_db floor (where float32 errors would show most) are covered.
  # Measured: 1.8e-4 dB (the tone's faint partials), 1.2e-5 dB (noise) at most.
  config = dict(sample_rate=22050, n_fft=1024, hop_length=512, n_mels=64)
  samples = config["sample_rate"]
  fade = 10.0 ** (-4.5 * np.arange(samples) / samples)
  named = {"harmonic_tone_and_noise": _harmonic_tone_and_noise(samples, config["sample_rate"]),
           "white_noise": 0.3 * np.random.default_rng(1).standard_normal(samples),
           "fading_white_noise": 0.3 * fade * np.random.default_rng(2).standard_normal(samples)}
  clips = np.stack(list(named.values())).astype(np.float32)
  features = np.asarray(jax.jit(jax.vmap(frontend.log_mel(**config)))(jnp.asarray(clips)))
  for (name, y), got in zip(named.items(), features):
    want = reference(y, **config)
    above_floor = want - (want.max() - 80.0)
    if name != "white_noise":
      assert np.mean((above_floor > 1e-6) & (above_floor < 10.0)) > 0.1, name
    assert np.max(np.abs(got - want)) < TOLERANCE_DB, name


def test_double_float_fft_keeps_a_faint_band_next_to_a_strong_tone_precise():
  # The float32 FFT's error, ~1e-7 of the frame's norm, is a large part of the faint band's
  # power; the double-float FFT gives every bin float32 relative precision. Measured: 8.8e-3 dB
  # and 1.2e-5 dB.
  config = dict(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=64)
  t = np.arange(4096) / 32000
  y = (np.sin(2 * np.pi * 15973.0 * t) + 9.6e-6 * np.sin(2 * np.pi * 226.0 * t)).astype(np.float32)
  want = reference(y, **config)
  errors = {precise: np.max(np.abs(np.asarray(jax.jit(frontend.log_mel(
      **config, precise=precise))(jnp.asarray(y))) - want)) for precise in (False, True)}
  assert errors[True] < 1e-4
  assert errors[False] > 100 * errors[True]


@pytest.mark.parametrize("options", [
    dict(top_db=None), dict(center=False), dict(pad_mode="reflect"), dict(pad_mode="edge"),
    dict(pad_mode="symmetric"), dict(fmin=300.0, fmax=3000.0), dict(n_fft=48, hop_length=48),
    dict(window="hamming"), dict(win_length=50), dict(window="hamming", win_length=37),
    dict(window="hamming", win_length=31, n_fft=48, hop_length=20),  # not a power of two
    dict(window="hamming", win_length=40, center=False, precise=True),
], ids=str)
def test_options_match_librosa(options):
  config = {**SMALL, **options}
  precise = config.pop("precise", False)
  y = signals(8000, 700)["noise"] + 0.2
  got = frontend.log_mel(**config, precise=precise)(jnp.asarray(y))
  np.testing.assert_allclose(np.asarray(got), reference(y, **config), atol=TOLERANCE_DB)


# The features of the sound event detection paper: 40 ms Hamming window, 20 ms hop, 40 mels.
PAPER = dict(sample_rate=44100, n_fft=2048, hop_length=882, win_length=1764, window="hamming",
             n_mels=40)


@pytest.mark.parametrize("precise, tolerance_db", [(True, 1e-4), (False, TOLERANCE_DB)])
def test_paper_hamming_features_match_librosa(precise, tolerance_db):
  # Measured: ~7e-6 dB (double-float FFT) and ~5e-4 dB (float32 FFT, the faint tone) at most.
  named = signals(44100, 44100 // 4)
  f = jax.jit(jax.vmap(frontend.log_mel(**PAPER, precise=precise)))
  features = np.asarray(f(jnp.asarray(np.stack(list(named.values())))))
  for (name, y), got in zip(named.items(), features):
    want = reference(y, **PAPER)
    assert got.shape == want.shape == (13, 40), name
    assert np.max(np.abs(got - want)) < tolerance_db, name


def test_paper_hamming_features_of_float64_input_match_librosa():
  # librosa's mel filterbank is float32, so parity stops at ~2e-7 dB (measured).
  y = signals(44100, 44100 // 4)["tone_and_faint_tone"].astype(np.float64)
  with jax.enable_x64(True):
    got = jax.jit(frontend.log_mel(**PAPER))(jnp.asarray(y))
    assert got.dtype == jnp.float64
  np.testing.assert_allclose(np.asarray(got), reference(y, **PAPER), rtol=0, atol=1e-5)


@pytest.mark.parametrize("window", frontend.WINDOWS)
@pytest.mark.parametrize("win_length, n_fft", [(None, 64), (64, 64), (50, 64), (37, 64),
                                               (1, 8), (1764, 2048)])
def test_window_function_matches_librosa(window, win_length, n_fft):
  got = frontend.window_function(window, win_length, n_fft)
  want = librosa.util.pad_center(
      scipy.signal.get_window(window, n_fft if win_length is None else win_length, fftbins=True),
      size=n_fft)
  assert got.dtype == np.float64
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


@pytest.mark.parametrize("window", frontend.WINDOWS)
@pytest.mark.parametrize("n_fft, hop_length, win_length, precise", [
    (64, 24, 50, True), (64, 16, 37, True), (64, 16, 37, False), (48, 7, 33, True)])
def test_stft_with_a_window_shorter_than_n_fft_matches_librosa(window, n_fft, hop_length,
                                                               win_length, precise):
  # n_fft 64 with precise=True takes the double-float FFT, the others the float32 one.
  y = signals(8000, 300)["chirp"]
  kwargs = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window)
  want = librosa.stft(y.astype(np.float64), **kwargs).T
  got = np.asarray(frontend.stft(y, **kwargs, precise=precise))
  assert got.dtype == np.complex64 and got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())
  with jax.enable_x64(True):
    got64 = np.asarray(frontend.stft(jnp.asarray(y, jnp.float64), **kwargs, precise=precise))
  assert got64.dtype == np.complex128
  np.testing.assert_allclose(got64, want, rtol=0, atol=1e-12 * np.abs(want).max())


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), log_gain=st.floats(-8.0, 2.0),
                  frequency=st.floats(20.0, 3990.0), log_noise=st.floats(-7.0, 0.0))
def test_log_mel_matches_librosa_on_random_mixtures(seed, log_gain, frequency, log_noise):
  t = np.arange(1000) / 8000
  rng = np.random.default_rng(seed)
  y = np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
  y = (10**log_gain * (y + 10**log_noise * rng.standard_normal(t.size))).astype(np.float32)
  got = _jitted_small(jnp.asarray(y))
  np.testing.assert_allclose(np.asarray(got), reference(y, **SMALL), atol=TOLERANCE_DB)


_jitted_small = jax.jit(frontend.log_mel(**SMALL))


def test_mel_filterbank_matches_librosa():
  for sample_rate, n_fft, n_mels, fmin, fmax in [(22050, 1024, 40, 0.0, None),
                                                 (44100, 2048, 80, 30.0, 16000.0),
                                                 (8000, 64, 12, 0.0, 4000.0)]:
    got = frontend.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                  fmax=fmax)
    want = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                               dtype=np.float64)
    np.testing.assert_allclose(got, want.T, rtol=1e-10, atol=1e-14)


def test_stft_and_frames_match_librosa():
  y = signals(8000, 300)["chirp"]
  np.testing.assert_allclose(frontend.window_function("hann", None, 64),
                             librosa.filters.get_window("hann", 64, fftbins=True), atol=1e-15)
  for n_fft, hop_length in [(64, 24), (64, 64), (64, 100), (48, 7)]:
    frames = frontend.frame(y, n_fft=n_fft, hop_length=hop_length, center=False)
    np.testing.assert_array_equal(frames, librosa.util.frame(y, frame_length=n_fft,
                                                             hop_length=hop_length).T)
  # n_fft 64 with precise=True takes the double-float FFT, the others the float32 one.
  for n_fft, hop_length, precise in [(64, 24, False), (64, 24, True), (48, 7, True)]:
    want = librosa.stft(y.astype(np.float64), n_fft=n_fft, hop_length=hop_length).T
    got = np.asarray(frontend.stft(y, n_fft=n_fft, hop_length=hop_length, precise=precise))
    assert got.shape == want.shape
    assert frontend.num_frames(y.size, n_fft=n_fft, hop_length=hop_length) == want.shape[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_vmap_and_batch_axes_equal_one_example_at_a_time():
  f = frontend.log_mel(**SMALL)
  y = jnp.asarray(np.stack([signals(8000, 400)[name] for name in ("noise", "sine", "silence")]))
  one_by_one = np.stack([np.asarray(_jitted_small(example)) for example in y])
  np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(y)), one_by_one, atol=1e-5)
  power = jax.jit(frontend.power_spectrogram, static_argnames=("n_fft", "hop_length"))
  np.testing.assert_allclose(power(y, n_fft=64, hop_length=24)[1],
                             power(y[1], n_fft=64, hop_length=24), rtol=1e-6)


def test_gradient_is_finite_on_silence_and_dc():
  # The values of the gradient are checked against finite differences in test_gradients.py.
  grad_fn = jax.jit(jax.grad(lambda x: jnp.sum(frontend.log_mel(**SMALL)(x))))
  for y in (np.zeros(400, np.float32), np.full(400, 0.5, np.float32)):
    assert np.all(np.isfinite(grad_fn(jnp.asarray(y))))


def test_traces_once_per_shape():
  traces = []
  f = frontend.log_mel(**SMALL)

  def counted(x):
    traces.append(None)
    return f(x)

  jitted = jax.jit(counted)
  y = jnp.asarray(signals(8000, 300)["noise"])
  jitted(y)
  jitted(2.0 * y)
  assert len(traces) == 1


@pytest.mark.parametrize("name, value", [
    ("sample_rate", 0), ("n_fft", 0), ("hop_length", -1), ("n_mels", 0), ("n_mels", 33),
    ("fmax", 4001.0), ("fmin", -1.0), ("fmin", 4000.0), ("top_db", -1.0), ("pad_mode", "wrap"),
    ("n_fft", 64.0), ("window", "hanning"), ("window", "kaiser"), ("win_length", 0),
    ("win_length", 65), ("win_length", 32.0), ("scaling", "minmax"), ("scaling", "standard"),
])
def test_bad_arguments_raise(name, value):
  with pytest.raises(ValueError, match=name):
    frontend.log_mel(**{**SMALL, name: value})


def test_bad_window_and_scaling_name_the_choices():
  with pytest.raises(ValueError, match=r"window must be one of \['hamming', 'hann'\], got "
                     r"'hanning' \(did you mean 'hann'\?\)"):
    frontend.log_mel(**SMALL, window="hanning")
  with pytest.raises(ValueError, match=r"win_length must be an integer in \[1, n_fft = 64\]"):
    frontend.stft(jnp.zeros(100), n_fft=64, hop_length=16, win_length=65)
  with pytest.raises(ValueError, match=r"window must be one of"):
    frontend.power_spectrogram(jnp.zeros(100), n_fft=64, hop_length=16, window="blackman")
  with pytest.raises(ValueError, match=r"scaling must be one of \[None, 'min_max'\], got "
                     r"'minmax' \(did you mean 'min_max'\?\)"):
    frontend.log_mel(**SMALL, scaling="minmax")


def test_bad_inputs_raise_at_trace_time():
  f = frontend.log_mel(**SMALL)
  with pytest.raises(ValueError, match="1-D"):
    jax.jit(f)(jnp.zeros((2, 300)))
  with pytest.raises(ValueError, match="shorter than"):  # "... n_fft" or "... one frame"
    jax.jit(frontend.log_mel(**SMALL, center=False))(jnp.zeros(63))
