"""`log_mel` refuses clips shorter than one frame; the framing refuses empty signals; per-clip
min-max scaling matches a numpy reference of librosa's log-mel and is zero on silence."""

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from soundjax import frontend

N_FFT = 64
# The features of the sound event detection paper, scaled per clip to [0, 1].
PAPER = dict(sample_rate=44100, n_fft=2048, hop_length=882, win_length=1764, window="hamming",
             n_mels=40)


def _librosa_min_max(y):
  """The published recipe: librosa's log-mel with ref=np.max, then min-max over the clip."""
  mel = librosa.feature.melspectrogram(y=np.asarray(y, np.float64), sr=PAPER["sample_rate"],
                                       n_fft=PAPER["n_fft"], hop_length=PAPER["hop_length"],
                                       win_length=PAPER["win_length"], window=PAPER["window"],
                                       n_mels=PAPER["n_mels"])
  db = librosa.power_to_db(mel, ref=np.max, top_db=80.0).T
  return (db - db.min()) / (db.max() - db.min())


def test_min_max_scaling_matches_librosa_per_clip():
  # A loud and a quiet clip: each is scaled by its own range, so both span [0, 1].
  rng = np.random.default_rng(0)
  t = np.arange(44100 // 4) / 44100
  loud = 0.5 * np.sin(2 * np.pi * 1000.0 * t) + 0.1 * rng.standard_normal(t.size)
  quiet = 1e-3 * rng.standard_normal(t.size)
  clips = np.stack([loud, quiet]).astype(np.float32)
  got = np.asarray(jax.jit(jax.vmap(frontend.log_mel(**PAPER, scaling="min_max")))(clips))
  for clip, features in zip(clips, got):
    np.testing.assert_allclose(features, _librosa_min_max(clip), rtol=0, atol=1e-5)
    assert features.min() == 0.0 and abs(features.max() - 1.0) < 1e-6


def test_num_frames_cuts_or_zero_pads_the_scaled_features():
  # 0.25 s at 44.1 kHz, hop 882: librosa makes 13 frames; cut to 10 (scaled over all 13 first,
  # as the published features) or padded to 16 with zero frames.
  clip = np.random.default_rng(3).standard_normal(44100 // 4).astype(np.float32) * 0.1
  reference = _librosa_min_max(clip)
  assert reference.shape[0] == 13
  cut = np.asarray(frontend.log_mel(**PAPER, scaling="min_max", num_frames=10)(clip))
  np.testing.assert_allclose(cut, reference[:10], rtol=0, atol=1e-5)
  padded = np.asarray(frontend.log_mel(**PAPER, scaling="min_max", num_frames=16)(clip))
  np.testing.assert_allclose(padded[:13], reference, rtol=0, atol=1e-5)
  np.testing.assert_array_equal(padded[13:], 0.0)
  with pytest.raises(ValueError, match="num_frames"):
    frontend.log_mel(**PAPER, num_frames=0)


def test_min_max_scale_is_per_example_over_frames_and_bins():
  x = np.random.default_rng(1).standard_normal((2, 3, 5, 4))
  low, high = x.min(axis=(-2, -1), keepdims=True), x.max(axis=(-2, -1), keepdims=True)
  got = frontend.min_max_scale(jnp.asarray(x, jnp.float32))
  assert got.shape == x.shape and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), (x - low) / (high - low), rtol=0, atol=1e-6)


def test_min_max_scaling_of_silence_is_zero_with_a_finite_gradient():
  f = frontend.log_mel(sample_rate=8000, n_fft=N_FFT, hop_length=16, n_mels=8, scaling="min_max")
  v = jnp.asarray(np.random.default_rng(2).standard_normal((17, 8)), jnp.float32)
  for fn, x, weights in [(f, jnp.zeros(256), v),
                         # The bare scaling of a constant, as a dB floor would be.
                         (frontend.min_max_scale, jnp.full((3, 4), -100.0), v[:3, :4])]:
    value_and_grad = jax.jit(lambda x: (fn(x), jax.grad(lambda z: jnp.sum(weights * fn(z)))(x)))
    value, grad = value_and_grad(x)
    np.testing.assert_array_equal(np.asarray(value), 0.0)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)  # zero, not NaN


def test_min_max_scale_keeps_nan():
  x = jnp.asarray([[1.0, jnp.nan], [0.0, 2.0]])
  assert np.all(np.isnan(np.asarray(frontend.min_max_scale(x))))


@pytest.mark.parametrize("center, pad_mode", [(True, "constant"), (True, "reflect"),
                                              (False, "constant")])
def test_one_frame_of_samples_is_the_shortest_clip(center, pad_mode):
  f = frontend.log_mel(sample_rate=8000, n_fft=N_FFT, hop_length=16, n_mels=8, center=center,
                       pad_mode=pad_mode)
  clip = jnp.asarray(np.random.default_rng(0).standard_normal(N_FFT), jnp.float32)
  frames = frontend.num_frames(N_FFT, n_fft=N_FFT, hop_length=16, center=center)
  assert jax.jit(f)(clip).shape == (frames, 8)
  for samples in (N_FFT - 1, 1, 0):
    with pytest.raises(ValueError, match=rf"^soundjax\.frontend\.log_mel: the waveform "
                       rf"(has {samples} samples|is empty), shorter than one frame; it needs at "
                       rf"least n_fft = {N_FFT} samples"):
      f(clip[:samples])


def test_log_mel_still_names_a_batch_passed_without_vmap():
  f = frontend.log_mel(sample_rate=8000, n_fft=N_FFT, hop_length=16, n_mels=8)
  with pytest.raises(ValueError, match=r"waveform must be 1-D \[samples\].*jax\.vmap"):
    f(jnp.zeros((2, 128)))


@pytest.mark.parametrize("center", [True, False])
def test_framing_refuses_an_empty_signal(center):
  with pytest.raises(ValueError, match=r"the signal is empty \(0 samples\)"):
    frontend.num_frames(0, n_fft=N_FFT, hop_length=16, center=center)
  with pytest.raises(ValueError, match=r"the signal is empty"):
    frontend.frame(jnp.zeros(0), n_fft=N_FFT, hop_length=16, center=center)
