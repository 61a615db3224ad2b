"""Paper 2's engineered-feature baselines: closed forms, librosa, and a planted selection case."""

import math

import librosa
import numpy as np
import pytest
from scipy.signal import windows

from soundjax.experiments.vocal_percussion import baselines as bl

SR = 16000


def clip(seconds=0.2, seed=0):
  """A decaying noise burst plus a decaying 300 Hz tone: a tiny vocal-percussion-like sound."""
  t = np.arange(int(seconds * SR)) / SR
  noise = np.random.default_rng(seed).normal(size=t.size)
  return 0.4 * noise * np.exp(-30 * t) + 0.3 * np.sin(2 * np.pi * 300 * t) * np.exp(-10 * t)


def test_framing_scales_the_published_frames():
  assert bl.feature_framing(44100) == (1024, 512)
  assert bl.feature_framing(48000) == (1024, 512)
  assert bl.feature_framing(16000) == (512, 256)
  assert bl.feature_framing(22050) == (512, 256)
  # Essentia's FrameGenerator(startFromZero=True): 3200 samples of 512/256 frames: the frame at
  # 2816 is the first to reach the end (2816 + 512 >= 3200), so 12 frames, the last zero-padded.
  audio = np.arange(1, 3201, dtype=float)
  framed = bl.frames(audio, 512, 256)
  assert framed.shape == (12, 512)
  np.testing.assert_array_equal(framed[11, :384], audio[2816:])
  np.testing.assert_array_equal(framed[11, 384:], 0.0)
  assert bl.frames(audio[:100], 512, 256).shape == (1, 512)
  assert bl.frames(np.ones(512 + 256), 512, 256).shape == (2, 512)


def test_envelope_follows_attack_and_release_in_closed_form():
  n_on, n_off = 300, 500
  env = bl.envelope(np.concatenate([np.ones(n_on), np.zeros(n_off)]), SR)
  ga = math.exp(-1 / (SR * 0.005))
  gr = math.exp(-1 / (SR * 0.100))
  # A unit step rises as 1 - ga^(n+1), then decays by gr per sample from its last value.
  np.testing.assert_allclose(env[:n_on], 1 - ga ** np.arange(1, n_on + 1), rtol=1e-12)
  np.testing.assert_allclose(env[n_on:], env[n_on - 1] * gr ** np.arange(1, n_off + 1),
                             rtol=1e-12)
  # Rectified: a sign flip changes nothing.
  np.testing.assert_array_equal(bl.envelope(-np.ones(10), SR), bl.envelope(np.ones(10), SR))


def test_derivative_sfx_on_hand_made_envelopes():
  # A ramp peaks at its end: every step is the slope, so the max derivative before the max is
  # the slope, and after the max only the last step remains: slope / last value.
  ramp = 0.5 * np.arange(11)
  after, before = bl.derivative_sfx(ramp)
  assert before == pytest.approx(0.5)
  assert after == pytest.approx(0.5 / 5.0)
  # Peak in the middle: derivatives (from e[-1] = 0) are 0, 2, 3, -2, -2; max index 2.
  after, before = bl.derivative_sfx(np.array([0.0, 2.0, 5.0, 3.0, 1.0]))
  assert before == pytest.approx(3.0)
  assert after == pytest.approx((3 - 2 - 2) / (5 + 3 + 1))
  assert bl.derivative_sfx(np.zeros(4)) == (0.0, 0.0)


def test_flatness_and_tc_to_total_on_hand_made_envelopes():
  assert bl.flatness_sfx(np.full(50, 0.3)) == pytest.approx(1.0)
  # 1..101: the 95th percentile is the value at index 95 (96), the 20th at index 20 (21).
  assert bl.flatness_sfx(np.arange(1.0, 102.0)) == pytest.approx(96 / 21)
  assert bl.flatness_sfx(np.r_[np.zeros(5), np.ones(5)]) == 1.0  # 20th percentile 0
  assert bl.tc_to_total(np.full(9, 2.0)) == pytest.approx(0.5)
  # Ramp 0..4: centroid sum(i^2) / sum(i) = 30 / 10 = 3, over n - 1 = 4.
  assert bl.tc_to_total(np.arange(5.0)) == pytest.approx(0.75)
  assert bl.tc_to_total(np.r_[1.0, np.zeros(7)]) == 0.0
  assert bl.tc_to_total(np.zeros(4)) == 0.5
  with pytest.raises(ValueError, match="at least 2"):
    bl.tc_to_total(np.ones(1))


def test_mel_filterbank_is_essentias():
  basis = bl.mel_filterbank(SR, 512)
  assert basis.shape == (40, 257)
  np.testing.assert_allclose(basis.sum(axis=1), 1.0)  # unit_sum
  # Band centres equally spaced in HTK mel from 0 Hz to Nyquist; each band peaks at the bin
  # nearest its centre (or a neighbour of it, the triangle being sampled).
  mel = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 42)
  centres = 700 * (10 ** (mel[1:-1] / 2595) - 1)
  assert np.all(np.abs(basis.argmax(axis=1) - centres / (8000 / 256)) <= 1)
  # Close to librosa's HTK bank made unit-sum: their triangles differ only in being linear in
  # mel (Essentia's "warping" weighting) or in Hz (librosa).
  ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=40, fmin=0.0, fmax=SR / 2, htk=True,
                            norm=None)
  ref /= ref.sum(axis=1, keepdims=True)
  assert np.abs(basis - ref).max() < 0.02


def test_mfcc_means_equal_librosas():
  audio = clip(seconds=0.208)  # 3328 = 512 + 11 * 256 samples: 12 whole frames, no padding
  frame, hop = bl.feature_framing(SR)
  window = windows.hann(frame, sym=True)
  power = np.abs(librosa.stft(audio, n_fft=frame, hop_length=hop, center=False,
                              window=window * 2 / window.sum())) ** 2
  assert power.shape[1] == 12
  bands = bl.mel_filterbank(SR, frame) @ power
  # Essentia's dB of power bands is 20 log10: twice librosa's power_to_db (no top_db clipping).
  mfcc = 2 * librosa.feature.mfcc(S=librosa.power_to_db(bands, top_db=None), n_mfcc=14)
  features = bl.timbre_features(audio, SR)
  np.testing.assert_allclose(features[4:18], mfcc.mean(axis=1), rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(features[18:32], np.gradient(mfcc, axis=1).mean(axis=1),
                             rtol=1e-9, atol=1e-9)
  lvt = bl.timbre_features(audio, SR, num_mfcc=12, deltas=False)
  np.testing.assert_allclose(lvt[4:], mfcc[:12].mean(axis=1), rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(lvt[:4], features[:4])
  # Librosa's own HTK filterbank (unit-sum) moves the means by a fraction of a dB.
  ref = librosa.filters.mel(sr=SR, n_fft=frame, n_mels=40, fmin=0.0, fmax=SR / 2, htk=True,
                            norm=None)
  ref /= ref.sum(axis=1, keepdims=True)
  alt = 2 * librosa.feature.mfcc(S=librosa.power_to_db(ref @ power, top_db=None), n_mfcc=14)
  np.testing.assert_allclose(features[4:18], alt.mean(axis=1), atol=0.5)


@pytest.mark.parametrize("audio", [clip(), np.zeros(3200), clip(seconds=0.01)],
                         ids=["burst", "silence", "one_frame"])
def test_shapes_and_finiteness(audio):
  for num_mfcc, deltas in bl.TIMBRE_SETTINGS.values():
    features = bl.timbre_features(audio, SR, num_mfcc=num_mfcc, deltas=deltas)
    assert features.shape == (4 + num_mfcc * (2 if deltas else 1),)
    assert np.all(np.isfinite(features))
  assert bl.timbre_features(audio, SR).shape == (32,)
  assert bl.timbre_features(audio, SR, num_mfcc=12, deltas=False).shape == (16,)
  engineered = bl.engineered_features(audio, SR)
  assert engineered.shape == (258,) == (bl.ENGINEERED_DIMENSION,)
  assert np.all(np.isfinite(engineered))
  assert len(set(bl.ENGINEERED_FEATURE_NAMES)) == 258


def test_engineered_layout_matches_its_names():
  audio = clip()
  features = dict(zip(bl.ENGINEERED_FEATURE_NAMES, bl.engineered_features(audio, SR)))
  timbre = bl.timbre_features(audio, SR, num_mfcc=13)
  for i in range(13):
    assert features[f"MFCC_{i}_mean"] == pytest.approx(timbre[4 + i])
    assert features[f"MFCC_{i}_dmean"] == pytest.approx(timbre[17 + i])
  assert features["Env_TCToTotal"] == timbre[3]
  frame, hop = bl.feature_framing(SR)
  raw = bl.frames(audio, frame, hop)
  zcr = [np.count_nonzero(np.diff(f > 0)) / frame for f in raw]
  assert features["ZCR_mean"] == pytest.approx(np.mean(zcr))
  assert features["ZCR_max"] == pytest.approx(np.max(zcr))
  assert features["ZCR_dvar"] == pytest.approx(np.var(np.gradient(zcr)))


def test_spectral_descriptors_of_a_single_line():
  # One bin k at 1 in an otherwise zero spectrum of n bins: every descriptor in closed form.
  n, k = 257, 40
  spectrum = np.zeros((1, n))
  spectrum[0, k] = 1.0
  hz_k = k * (SR / 2) / (n - 1)  # 1250 Hz, inside SpectralComplexity's 100-5000 Hz
  frame = np.array([[1.0, -1.0, 1.0, 1.0, 0.0, -2.0, 3.0, 0.0]])  # 5 sign changes in 8
  got = dict(zip(bl.DESCRIPTOR_NAMES, bl.spectral_descriptors(spectrum, frame, SR)[0]))
  x = np.arange(n) / (n - 1)
  expected = {
      "RollOff_25": hz_k, "RollOff_50": hz_k, "RollOff_90": hz_k, "RollOff_95": hz_k,
      "SpecComplexity": 1.0, "HFC": hz_k,
      "StrongPeak": 1.0 / math.log10((k + 1) / k),  # the half-maximum run is [k, k + 1)
      "SpecCentroid": k / (n - 1), "SpecVariance": 0.0, "SpecSkewness": 0.0, "SpecKurtosis": 0.0,
      "SpecCrest": float(n), "SpecEntropy": 0.0, "SpecFlatness": 0.0,
      "SpecDecrease": (x[k] - 0.5) / np.sum((x - 0.5) ** 2),  # slope of a least-squares line
      "SpecRMS": math.sqrt(1 / n), "ZCR": 5 / 8,
  }
  for name, value in expected.items():
    assert got[name] == pytest.approx(value, abs=1e-12), name


def test_select_features_finds_the_two_informative_columns():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 8))
  y = 2 * (x[:, 2] > 0) + (x[:, 5] > 0)  # four classes set by columns 2 and 5 alone
  x[:, 6] *= 1e3  # scale does not matter (z-scored first)
  picked = bl.select_features(x, y, num_features=2, seed=0, num_trees=30, num_repeats=3)
  assert sorted(picked.tolist()) == [2, 5]
  again = bl.select_features(x, y, num_features=2, seed=0, num_trees=30, num_repeats=3)
  np.testing.assert_array_equal(picked, again)
  ranked = bl.select_features(x, y, num_features=8, seed=1, fold=4, num_trees=30, num_repeats=3)
  assert sorted(ranked[:2].tolist()) == [2, 5] and sorted(ranked.tolist()) == list(range(8))
  with pytest.raises(ValueError, match="num_features"):
    bl.select_features(x, y, num_features=9)
  with pytest.raises(ValueError, match="fold"):
    bl.select_features(x, y, num_features=2, fold=5)
  with pytest.raises(ValueError, match="not finite"):
    bl.select_features(np.where(x > 3, np.nan, x), y, num_features=2)


def test_errors():
  with pytest.raises(ValueError, match="non-empty 1-D"):
    bl.timbre_features(np.zeros((2, 100)), SR)
  with pytest.raises(ValueError, match="not finite"):
    bl.engineered_features(np.r_[0.0, np.inf, 0.0], SR)
  with pytest.raises(ValueError, match="num_mfcc"):
    bl.timbre_features(clip(), SR, num_mfcc=41)
  with pytest.raises(ValueError, match="sample_rate"):
    bl.feature_framing(0)
