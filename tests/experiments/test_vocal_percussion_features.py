"""Paper 2's input patches against librosa and the published normalisation, written out here."""

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from soundjax.data.synthetic import vocal_percussion as vp
from soundjax.experiments.vocal_percussion import features


def published_patch(y, sample_rate, n_fft, hop_length, n_mels=64, num_frames=48):
  """librosa's magnitude mel, fitted to `num_frames` (zeros after), then the normalisation of the
  published train_deep.py with its `norm_min_max`, as written there."""
  spec = librosa.feature.melspectrogram(y=np.asarray(y, np.float64), sr=sample_rate, n_fft=n_fft,
                                        hop_length=hop_length, center=True, n_mels=n_mels,
                                        htk=False, power=1.0).T
  patch = np.zeros((num_frames, n_mels))
  patch[:min(num_frames, len(spec))] = spec[:num_frames]
  norm_min_max = [[0.0, 3.7073483668036347], [-9.210340371976182, 9.999500033329732e-05]]
  patch = (patch - norm_min_max[0][0]) / (norm_min_max[0][1] - norm_min_max[0][0] + 1e-16)
  patch = np.log(patch + 1e-4)
  return (patch - norm_min_max[1][0]) / (norm_min_max[1][1] - norm_min_max[1][0] + 1e-16)


def utterance(sample_rate, seconds, instrument=vp.SD, seed=0):
  voice = vp.draw_voice(np.random.default_rng(seed))
  syllable = vp.SYLLABLE_NAMES.index("k_a" if instrument == vp.SD else "ts_other")
  return vp.synth_utterance(np.random.default_rng([seed, 1]), voice, instrument, syllable,
                            sample_rate=sample_rate, num_samples=int(seconds * sample_rate))


def test_framing_follows_the_frame_and_hop_seconds():
  assert features.patch_framing(sample_rate=44100) == (1024, 353)
  assert features.patch_framing(sample_rate=16000) == (512, 128)
  hop = features.PUBLISHED_HOP_SECONDS
  assert features.patch_framing(sample_rate=44100, hop_seconds=hop) == (1024, 345)
  assert features.patch_framing(sample_rate=16000, frame_seconds=0.032) == (512, 128)
  for bad in (dict(sample_rate=0), dict(sample_rate=16000, hop_seconds=1e-5),
              dict(sample_rate=16000, frame_seconds=-1.0)):
    with pytest.raises(ValueError):
      features.patch_framing(**bad)


@pytest.mark.parametrize("sample_rate, seconds, hop_seconds, instrument", [
    (16000, 0.4, 0.008, vp.SD),  # 51 frames, cut to 48.
    (16000, 0.2, 0.008, vp.HHC),  # 26 frames, padded.
    (44100, 0.4, features.PUBLISHED_HOP_SECONDS, vp.KD),  # 52 frames of the published framing.
    (44100, 0.3, 0.008, vp.HHO),  # 38 frames, padded.
])
def test_patches_equal_librosa_and_the_published_normalisation(sample_rate, seconds, hop_seconds,
                                                                instrument):
  y = utterance(sample_rate, seconds, instrument)
  y[len(y) // 2:] = 0  # Cut at a next onset, as a record is: silent frames inside the patch.
  f = features.patch_frontend(sample_rate=sample_rate, hop_seconds=hop_seconds)
  got = np.asarray(jax.jit(f)(y))
  assert got.shape == (48, 64) and got.dtype == np.float32
  n_fft, hop_length = features.patch_framing(sample_rate=sample_rate, hop_seconds=hop_seconds)
  expected = published_patch(y, sample_rate, n_fft, hop_length)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
  assert expected.min() > -0.01 and expected.max() > 0.5  # A patch of the published range.


def test_padded_frames_are_zero_and_bands_run_low_to_high():
  f = features.patch_frontend(sample_rate=16000)
  low = (0.5 * np.sin(2 * np.pi * 150 * np.arange(1600) / 16000)).astype(np.float32)  # 13 frames.
  patch = np.asarray(f(low))
  np.testing.assert_allclose(patch[14:], 0.0, atol=1e-6)
  assert np.all(np.argmax(patch[2:11], axis=1) < 6)  # 150 Hz lies in the lowest bands, first.


def test_the_gradient_is_finite_on_silence_and_around_it():
  f = features.patch_frontend(sample_rate=16000)
  loss = lambda y: jnp.sum(f(y) ** 2)
  silence = jnp.zeros(6400)
  assert np.all(np.isfinite(jax.grad(loss)(silence)))
  partly = jnp.asarray(utterance(16000, 0.4)).at[3200:].set(0.0)
  gradient = np.asarray(jax.grad(loss)(partly))
  assert np.all(np.isfinite(gradient)) and np.any(gradient[:3200] != 0)


def test_batched_jit_compiles_once_per_shape():
  f = jax.jit(jax.vmap(features.patch_frontend(sample_rate=16000)))
  clips = np.stack([utterance(16000, 0.4, seed=seed) for seed in range(3)])
  first = f(clips)
  f(clips[::-1].copy())
  assert f._cache_size() == 1 and first.shape == (3, 48, 64)
  f(clips[:, :4000])
  assert f._cache_size() == 2
  np.testing.assert_allclose(first[1], features.patch_frontend(sample_rate=16000)(clips[1]),
                             atol=1e-6)


def test_bad_waveforms_and_settings_are_refused():
  f = features.patch_frontend(sample_rate=16000)
  with pytest.raises(ValueError, match="1-D"):
    f(jnp.zeros((2, 6400)))
  with pytest.raises(ValueError, match="1-D"):
    f(jnp.zeros(0))
  with pytest.raises(ValueError, match="n_mels"):
    features.patch_frontend(sample_rate=16000, n_mels=300)
  with pytest.raises(ValueError, match="num_frames"):
    features.patch_frontend(sample_rate=16000, num_frames=0)
