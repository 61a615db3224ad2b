"""Paper 2's engineered-feature baselines: "Timbre" and "Feature Selection", in NumPy.

The published features (github.com/alejandrodl/vocal-percussion-transcription) are Essentia's,
computed per utterance at 44.1 kHz with 1024-sample frames, a 512-sample hop
(`FrameGenerator(startFromZero=True)`: frames from sample 0 on, the last one zero-padded, up to the
first that reaches the end), `Windowing(type="hann")` and `Spectrum`:

- **Timbre** (`src/data/extract_engineered_features_mfcc_env.py`): `extract_features_32` (AVP) =
  4 envelope features + 14 MFCC means + 14 means of the MFCCs' frame-to-frame `np.gradient`;
  `extract_features_16` (LVT) = 4 envelope features + 12 MFCC means (no derivatives). MFCC: 40
  bands from 0 to 22050 Hz. `timbre_features(num_mfcc=14)` and `(num_mfcc=12, deltas=False)`.
- **Feature selection** (`src/data/extract_engineered_features_all.py`, 258 values): 4 envelope
  features, 13 MFCCs x 6 statistics, the 40 mel band energies' means, 17 spectral descriptors x 8
  statistics (`ENGINEERED_FEATURE_NAMES` lists them in order), then ranked by random-forest
  permutation importance (`src/models/train_selection.py`; `select_features`).

Envelope features: `Envelope(applyRectification=True, attackTime=5, releaseTime=100)` of the
whole utterance, then `DerivativeSFX` (2 values), `FlatnessSFX` and `TCToTotal`, re-implemented
here from Essentia's sources (`src/algorithms/standard/envelope.cpp`, `sfx/derivativesfx.cpp`,
`sfx/flatnesssfx.cpp`, `sfx/tctototal.cpp` of github.com/MTG/essentia); each function's docstring
gives the definition.

Spectra follow Essentia's defaults too: a symmetric Hann window scaled to sum 2 (`Windowing`'s
`normalized=True`, so a full-scale sinusoid peaks near 1), `|rfft|`; MFCC = `MFCC`'s defaults: power
spectrum through 40 triangular bands equally spaced on the HTK mel scale from 0 Hz to Nyquist,
triangles drawn on the mel axis (`weighting="warping"`), each normalised to unit sum of its weights
(`normalize="unit_sum"`); `20 log10(max(band, 1e-10))` (`logType="dbamp"`, applied to power bands);
orthonormal DCT-II. So values equal librosa's `mfcc(S=power_to_db(bands, top_db=None))` times 2.

At other sample rates the frame is the power of two nearest to 1024 samples scaled by
`sample_rate / 44100` (512 at 16 kHz) and the hop half of it, as published; frequencies are in Hz
of the actual rate (the published calls leave Essentia's `sampleRate=44100`, the data's rate).
Computed in float64 (Essentia's `Real` is float32). Host-side only, never traced.
"""

import functools
import math
from typing import Tuple

import numpy as np
from scipy.signal import windows
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance

PUBLISHED_SAMPLE_RATE = 44100
PUBLISHED_FRAME_SIZE = 1024
PUBLISHED_HOP_SIZE = 512
ENVELOPE_ATTACK_MS = 5.0
ENVELOPE_RELEASE_MS = 100.0
NUM_MEL_BANDS = 40
# (num_mfcc, deltas) of the published timbre vectors: 32-d for AVP, 16-d for LVT.
TIMBRE_SETTINGS = {"avp": (14, True), "lvt": (12, False)}
# How many engineered features are kept (train_selection.py + eval_knn.py): AVP 32, LVT 16.
SELECTED_NUM_FEATURES = {"avp": 32, "lvt": 16}
ENGINEERED_NUM_MFCC = 13
_SILENCE = 1e-10  # MFCC's silenceThreshold
_DB_PER_DECADE = 20.0  # logType "dbamp"
_ROLLOFF_CUTOFFS = (0.25, 0.50, 0.90, 0.95)
# SpectralComplexity: the SpectralPeaks settings it configures.
_PEAK_MIN_HZ, _PEAK_MAX_HZ, _PEAK_THRESHOLD, _MAX_PEAKS = 100.0, 5000.0, 0.005, 100

ENVELOPE_NAMES = ("Env_DerAvAfterMax", "Env_MaxDerBeforeMax", "Env_Flatness", "Env_TCToTotal")
_MFCC_STATS = ("mean", "std", "dmean", "dvar", "ddmean", "ddvar")
DESCRIPTOR_NAMES = ("RollOff_25", "RollOff_50", "RollOff_90", "RollOff_95", "SpecComplexity",
                    "HFC", "StrongPeak", "SpecCentroid", "SpecVariance", "SpecSkewness",
                    "SpecKurtosis", "SpecCrest", "SpecDecrease", "SpecEntropy", "SpecFlatness",
                    "SpecRMS", "ZCR")
_DESCRIPTOR_STATS = ("mean", "var", "min", "max", "dmean", "dvar", "dmin", "dmax")
# The published vector's layout: statistic-major blocks (all 13 MFCC means, then all 13 stds, ...).
# (train_selection.py's `features_names` lists MFCCs coefficient-major and the mel bands before
# the descriptors, which does not match the extractor's order; only its names are off.)
ENGINEERED_FEATURE_NAMES = (
    ENVELOPE_NAMES
    + tuple(f"MFCC_{i}_{s}" for s in _MFCC_STATS for i in range(ENGINEERED_NUM_MFCC))
    + tuple(f"MelBand_{i}" for i in range(NUM_MEL_BANDS))
    + tuple(f"{d}_{s}" for s in _DESCRIPTOR_STATS for d in DESCRIPTOR_NAMES))
ENGINEERED_DIMENSION = len(ENGINEERED_FEATURE_NAMES)  # 4 + 78 + 40 + 136 = 258


def feature_framing(sample_rate: float) -> Tuple[int, int]:
  """`(frame_size, hop)`: the published 1024/512 at 44.1 kHz, scaled to `sample_rate`.

  Example:
    >>> feature_framing(44100), feature_framing(16000)
    ((1024, 512), (512, 256))
  """
  if not sample_rate > 0:
    raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
  # Nearest power of two on a log scale: 48 kHz keeps 1024 instead of jumping to 2048.
  frame = 1 << max(2, round(math.log2(PUBLISHED_FRAME_SIZE * sample_rate / PUBLISHED_SAMPLE_RATE)))
  return frame, frame * PUBLISHED_HOP_SIZE // PUBLISHED_FRAME_SIZE


def envelope(audio: np.ndarray, sample_rate: float, *, attack_ms: float = ENVELOPE_ATTACK_MS,
             release_ms: float = ENVELOPE_RELEASE_MS) -> np.ndarray:
  """Essentia's `Envelope`: a one-pole low-pass of `|audio|`, faster while the input rises.

  `e[n] = (1 - g) |x[n]| + g e[n-1]` from `e[-1] = 0`, with `g = exp(-1 / (sample_rate * T))`,
  `T` the attack time when `e[n-1] < |x[n]|`, else the release time (seconds); `T = 0` gives
  `g = 0`. The branch depends on the state, so it is a plain loop (about 0.1 us a sample).
  """
  if not sample_rate > 0:
    raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
  x = np.abs(_audio(audio)).tolist()
  attack = math.exp(-1.0 / (sample_rate * attack_ms / 1000)) if attack_ms > 0 else 0.0
  release = math.exp(-1.0 / (sample_rate * release_ms / 1000)) if release_ms > 0 else 0.0
  out, state = [], 0.0
  for sample in x:
    g = attack if state < sample else release
    state = (1.0 - g) * sample + g * state
    out.append(state)
  return np.asarray(out)


def derivative_sfx(env: np.ndarray) -> Tuple[float, float]:
  """Essentia's `DerivativeSFX`: `(derAvAfterMax, maxDerBeforeMax)` of an envelope.

  With `m` the first index of the maximum and `d[i] = e[i] - e[i-1]` (`e[-1] = 0`):
  `derAvAfterMax = sum(d[m:]) / sum(e[m:])` (0 when the denominator is 0), the amplitude-weighted
  average derivative after the maximum; `maxDerBeforeMax = max(d[:m+1])`.
  """
  env = _envelope_array(env)
  peak = int(np.argmax(env))
  d = np.diff(env, prepend=0.0)
  den = env[peak:].sum()
  return (float(d[peak:].sum() / den) if den != 0 else 0.0), float(d[:peak + 1].max())


def flatness_sfx(env: np.ndarray) -> float:
  """Essentia's `FlatnessSFX`: the 95th over the 20th percentile of the envelope's values.

  Percentiles interpolate linearly between sorted values at `(n - 1) p / 100` (NumPy's "linear"
  method); 1 when the 20th percentile is 0.
  """
  env = _envelope_array(env)
  upper, lower = np.percentile(env, [95.0, 20.0])
  return float(upper / lower) if lower != 0 else 1.0


def tc_to_total(env: np.ndarray) -> float:
  """Essentia's `TCToTotal`: the temporal centroid `sum(i e[i]) / sum(e[i])` over `n - 1`.

  0.5 (the middle) for an all-zero envelope, as Essentia's documentation states.
  """
  env = _envelope_array(env)
  if len(env) < 2:
    raise ValueError(f"TCToTotal needs an envelope of at least 2 samples, got {len(env)}")
  total = env.sum()
  if total == 0:
    return 0.5
  return float(np.dot(np.arange(len(env)), env) / total / (len(env) - 1))


def envelope_features(audio: np.ndarray, sample_rate: float) -> np.ndarray:
  """The 4 published envelope features of an utterance (`ENVELOPE_NAMES` order)."""
  env = envelope(audio, sample_rate)
  return np.array([*derivative_sfx(env), flatness_sfx(env), tc_to_total(env)])


def frames(audio: np.ndarray, frame_size: int, hop: int) -> np.ndarray:
  """`FrameGenerator(startFromZero=True)`: `[num_frames, frame_size]`, the last zero-padded.

  Frames start at 0, hop, 2 hop, ... and stop at the first that reaches the end of the audio:
  `1 + max(0, ceil((len - frame_size) / hop))` of them.
  """
  audio = _audio(audio)
  num = 1 + max(0, -(-(len(audio) - frame_size) // hop))
  padded = np.zeros(frame_size + (num - 1) * hop)
  padded[:len(audio)] = audio
  return np.lib.stride_tricks.sliding_window_view(padded, frame_size)[::hop]


@functools.lru_cache(maxsize=16)
def essentia_window(frame_size: int) -> np.ndarray:
  """`Windowing(type="hann")`: the symmetric Hann window scaled to sum 2 (`normalized=True`)."""
  window = windows.hann(frame_size, sym=True)
  window *= 2.0 / window.sum()
  window.setflags(write=False)
  return window


def magnitude_spectra(audio: np.ndarray, frame_size: int, hop: int) -> np.ndarray:
  """`Spectrum(Windowing(frame))` of each frame: `[num_frames, frame_size // 2 + 1]`."""
  return np.abs(np.fft.rfft(frames(audio, frame_size, hop) * essentia_window(frame_size), axis=-1))


@functools.lru_cache(maxsize=16)
def mel_filterbank(sample_rate: float, frame_size: int,
                   num_bands: int = NUM_MEL_BANDS) -> np.ndarray:
  """Essentia `MelBands`' weights (MFCC's defaults), `[num_bands, frame_size // 2 + 1]`.

  Band edges equally spaced on the HTK mel scale `2595 log10(1 + f / 700)` from 0 Hz to Nyquist;
  band `i` is a triangle from edge `i` to edge `i + 2`, linear on the mel axis ("warping"
  weighting), normalised so its bins' weights sum to 1 ("unit_sum").
  """
  hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
  nyquist = sample_rate / 2
  edges = 700.0 * (10.0 ** (np.linspace(0.0, hz_to_mel(nyquist), num_bands + 2) / 2595.0) - 1.0)
  bins = hz_to_mel(np.arange(frame_size // 2 + 1) * nyquist / (frame_size // 2))
  lower, centre, upper = (hz_to_mel(edges[k:k + num_bands])[:, None] for k in range(3))
  weights = np.maximum(0.0, np.minimum((bins - lower) / (centre - lower),
                                       (upper - bins) / (upper - centre)))
  sums = weights.sum(axis=1, keepdims=True)
  if np.any(sums == 0):
    raise ValueError(f"{num_bands} mel bands need more than {frame_size // 2 + 1} spectrum bins at "
                     f"{sample_rate} Hz (a band holds no bin)")
  weights /= sums
  weights.setflags(write=False)
  return weights


def mfcc_frames(spectra: np.ndarray, sample_rate: float, num_mfcc: int) -> Tuple[np.ndarray,
                                                                                 np.ndarray]:
  """Essentia `MFCC` of magnitude spectra: `(bands [frames, 40], mfcc [frames, num_mfcc])`.

  `bands` are the power mel band energies (MFCC's first output, used by the engineered vector).
  """
  frame_size = 2 * (spectra.shape[-1] - 1)
  bands = (spectra ** 2) @ mel_filterbank(sample_rate, frame_size).T
  log_bands = _DB_PER_DECADE * np.log10(np.maximum(bands, _SILENCE))
  return bands, log_bands @ _dct_ii(NUM_MEL_BANDS, num_mfcc).T


def timbre_features(audio: np.ndarray, sample_rate: float, *, num_mfcc: int = 14,
                    deltas: bool = True) -> np.ndarray:
  """The published "Timbre" vector: 4 envelope features, MFCC means[, MFCC derivative means].

  Args:
    audio: `[samples]`, one utterance.
    sample_rate: Hz.
    num_mfcc: 14 for AVP, 12 for LVT (`TIMBRE_SETTINGS`).
    deltas: append the frame-to-frame `np.gradient` means (AVP: True; LVT: False).

  Returns:
    `[4 + num_mfcc * (2 if deltas else 1)]`: 32 for AVP's settings, 16 for LVT's. A one-frame
    utterance has derivative means 0 (`np.gradient`, and so the published code, needs 2 frames).

  Example:
    >>> clip = np.random.default_rng(0).normal(size=3200) * np.hanning(3200)
    >>> timbre_features(clip, 16000).shape, timbre_features(clip, 16000, num_mfcc=12,
    ...                                                     deltas=False).shape
    ((32,), (16,))
  """
  if isinstance(num_mfcc, bool) or not (isinstance(num_mfcc, (int, np.integer))
                                         and 1 <= num_mfcc <= NUM_MEL_BANDS):
    raise ValueError(f"num_mfcc must be an integer in [1, {NUM_MEL_BANDS}], got {num_mfcc!r}")
  frame_size, hop = feature_framing(sample_rate)
  _, mfcc = mfcc_frames(magnitude_spectra(audio, frame_size, hop), sample_rate, num_mfcc)
  parts = [envelope_features(audio, sample_rate), mfcc.mean(axis=0)]
  if deltas:
    parts.append(_gradient(mfcc).mean(axis=0))
  return np.concatenate(parts)


def spectral_descriptors(spectra: np.ndarray, frame_audio: np.ndarray,
                         sample_rate: float) -> np.ndarray:
  """The 17 per-frame descriptors of the engineered vector (`DESCRIPTOR_NAMES` order).

  On each magnitude spectrum `s` (bins `i = 0..n-1`, `f_i = i * (sample_rate / 2) / (n - 1)`),
  Essentia's definitions with the published (default) parameters:

  - RollOff_c (c = .25, .5, .9, .95): the first `f_i` where `cumsum(s^2) >= c sum(s^2)`.
  - SpecComplexity: the number of spectral peaks (`SpectralPeaks`: 100-5000 Hz, magnitude above
    0.005, at most 100). Counted here as strict local maxima (and a falling first bin at 100 Hz);
    Essentia's walker also counts plateaus, and cuts at 5 kHz on the interpolated peak position.
  - HFC (Masri): `sum(f_i s_i^2)`.
  - StrongPeak: `max(s) / log10(right / left)`, `[left, right)` the run of bins at or above half
    the maximum around it (0 for a flat spectrum, and when the run starts at bin 0).
  - SpecCentroid, SpecVariance, SpecSkewness, SpecKurtosis: `CentralMoments` (pdf mode, range 1)
    of `s` over normalised frequency `i / (n - 1)`: centroid `c = sum(x p)`, then
    `sum((x - c)^k p)` for k = 2, 3, 4 (`p = s / sum(s)`; all 0 for a zero spectrum). The
    published code stores `CentralMoments()[1]` in the centroid's slot, the first *central*
    moment, identically 0; the centroid the name promises is stored instead.
  - SpecCrest: `max(s) / mean(s)` (0 for a zero spectrum). SpecDecrease: the least-squares slope
    of `s` over `[0, 1]`. SpecEntropy: `-sum(p log2 p)`. SpecFlatness: geometric over arithmetic
    mean (0 if any bin is 0). SpecRMS: `sqrt(mean(s^2))`, of the spectrum, as published.
  - ZCR: `ZeroCrossingRate` of the raw (unwindowed) frame: changes between `> 0` and `<= 0`,
    divided by the frame length.

  Args:
    spectra: `[frames, bins]` magnitude spectra.
    frame_audio: `[frames, frame_size]` the raw frames.
    sample_rate: Hz.

  Returns:
    `[frames, 17]`.
  """
  s = np.asarray(spectra, np.float64)
  num_bins = s.shape[-1]
  hz = np.arange(num_bins) * (sample_rate / 2) / (num_bins - 1)
  power = s ** 2
  cumulative = np.cumsum(power, axis=-1)
  rolloffs = [hz[np.argmax(cumulative >= c * cumulative[:, -1:], axis=-1)]
              for c in _ROLLOFF_CUTOFFS]
  total = s.sum(axis=-1, keepdims=True)
  safe_total = np.where(total > 0, total, 1.0)
  p = s / safe_total
  x = np.arange(num_bins) / (num_bins - 1)
  centroid = (p * x).sum(axis=-1, keepdims=True)
  moments = [((x - centroid) ** k * p).sum(axis=-1) for k in (2, 3, 4)]
  maximum = s.max(axis=-1)
  mean = s.mean(axis=-1)
  crest = np.where(maximum > 0, maximum / np.where(mean > 0, mean, 1.0), 0.0)
  slope_x = x - 0.5
  decrease = ((s - mean[:, None]) * slope_x).sum(axis=-1) / (slope_x ** 2).sum()
  with np.errstate(divide="ignore", invalid="ignore"):
    entropy = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)
    flatness = np.where(np.all(s > 0, axis=-1),
                        np.exp(np.log(np.where(s > 0, s, 1.0)).mean(axis=-1)) / mean, 0.0)
  rms = np.sqrt(power.mean(axis=-1))
  positive = np.asarray(frame_audio) > 0
  zcr = np.count_nonzero(positive[:, 1:] != positive[:, :-1], axis=-1) / positive.shape[-1]
  columns = [*rolloffs, _spectral_complexity(s, hz), (hz * power).sum(axis=-1),
             np.array([_strong_peak(row) for row in s]), centroid[:, 0], *moments, crest,
             decrease, entropy, flatness, rms, zcr]
  return np.stack(columns, axis=-1)


def engineered_features(audio: np.ndarray, sample_rate: float) -> np.ndarray:
  """The published 258-d engineered vector (`ENGINEERED_FEATURE_NAMES` order).

  Layout as `extract_engineered_features_all.py`: 4 envelope features; for the 13 MFCCs (over
  frames) the mean, std, mean and variance of `np.gradient`, mean and variance of the gradient's
  gradient (statistic-major: 13 means, then 13 stds, ...); the 40 power mel band energies'
  means; for the 17 descriptors of `spectral_descriptors` the mean, variance, min and max, and
  the same four of their `np.gradient` (statistic-major). Variances and std are NumPy's
  (population). A one-frame utterance has gradients 0.

  Example:
    >>> clip = np.random.default_rng(0).normal(size=3200) * np.hanning(3200)
    >>> engineered_features(clip, 16000).shape
    (258,)
  """
  frame_size, hop = feature_framing(sample_rate)
  raw = frames(audio, frame_size, hop)
  spectra = np.abs(np.fft.rfft(raw * essentia_window(frame_size), axis=-1))
  bands, mfcc = mfcc_frames(spectra, sample_rate, ENGINEERED_NUM_MFCC)
  d_mfcc = _gradient(mfcc)
  dd_mfcc = _gradient(d_mfcc)
  descriptors = spectral_descriptors(spectra, raw, sample_rate)
  d_descriptors = _gradient(descriptors)
  out = np.concatenate([
      envelope_features(audio, sample_rate),
      mfcc.mean(0), mfcc.std(0), d_mfcc.mean(0), d_mfcc.var(0), dd_mfcc.mean(0), dd_mfcc.var(0),
      bands.mean(0),
      descriptors.mean(0), descriptors.var(0), descriptors.min(0), descriptors.max(0),
      d_descriptors.mean(0), d_descriptors.var(0), d_descriptors.min(0), d_descriptors.max(0)])
  assert out.shape == (ENGINEERED_DIMENSION,), out.shape
  return out


def select_features(features: np.ndarray, labels: np.ndarray, *, num_features: int,
                    seed: int = 0, fold: int = 0, num_folds: int = 5, num_trees: int = 200,
                    num_repeats: int = 10, n_jobs=None) -> np.ndarray:
  """Indices of the `num_features` most important columns, by permutation importance.

  As `src/models/train_selection.py`: the pooled features of the embedding-training users are
  z-scored per column (population std + 1e-16); rows are shuffled with NumPy's legacy seed 0;
  the `fold`-th contiguous fifth is held out; `RandomForestClassifier(n_estimators=200,
  random_state=seed)` is fit on the rest and `permutation_importance(n_repeats=10,
  random_state=seed)` measured on the held-out fifth; columns are ranked by mean importance. The
  published study repeats this for 5 folds x 5 seeds (one ranking per embedding model) and keeps
  the top 32 (AVP) or 16 (LVT) (`SELECTED_NUM_FEATURES`). Ties keep the lower index first (the
  published `argsort()[::-1]` leaves their order to the sort).

  Args:
    features: `[records, dims]`, finite.
    labels: `[records]` class labels of the label level being ranked.
    num_features: how many indices to return, at most `dims`.
    seed: the forest's and the permutations' random state (published: the iteration 0-4).
    fold: which held-out fifth, 0 to `num_folds - 1` (published: the split 0-4).
    num_folds: the held-out fraction is `1 / num_folds`.
    num_trees: the forest's trees (200 published; fewer for tests).
    num_repeats: permutations per column (10 published).
    n_jobs: scikit-learn's parallelism (the published runs use -1; results do not depend on it).

  Returns:
    `[num_features]` column indices, most important first.
  """
  x = np.asarray(features, np.float64)
  y = np.asarray(labels)
  if x.ndim != 2 or y.shape != x.shape[:1]:
    raise ValueError(f"features must be [records, dims] and labels [records], got shapes "
                     f"{x.shape} and {y.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("features are not finite (NaN or inf)")
  if not (isinstance(num_features, int) and 1 <= num_features <= x.shape[1]):
    raise ValueError(f"num_features must be an integer in [1, {x.shape[1]}], got {num_features!r}")
  if not (isinstance(num_folds, int) and num_folds >= 2 and 0 <= fold < num_folds):
    raise ValueError(f"need 0 <= fold < num_folds and num_folds >= 2, got {fold}, {num_folds}")
  held = len(x) // num_folds
  if held < 1 or len(x) - held < 2:
    raise ValueError(f"{len(x)} records are too few for {num_folds} folds")
  x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-16)
  order = np.random.RandomState(0).permutation(len(x))  # = np.random.seed(0); shuffle
  x, y = x[order], y[order]
  test = np.zeros(len(x), bool)
  test[fold * held:(fold + 1) * held] = True
  forest = RandomForestClassifier(n_estimators=num_trees, random_state=seed, n_jobs=n_jobs)
  forest.fit(x[~test], y[~test])
  result = permutation_importance(forest, x[test], y[test], n_repeats=num_repeats,
                                  random_state=seed, n_jobs=n_jobs)
  return np.argsort(-result.importances_mean, kind="stable")[:num_features]


def _audio(audio) -> np.ndarray:
  audio = np.asarray(audio, np.float64)
  if audio.ndim != 1 or audio.size == 0:
    raise ValueError(f"audio must be a non-empty 1-D array, got shape {audio.shape}")
  if not np.all(np.isfinite(audio)):
    raise ValueError("audio is not finite (NaN or inf)")
  return audio


def _envelope_array(env) -> np.ndarray:
  env = np.asarray(env, np.float64)
  if env.ndim != 1 or env.size == 0:
    raise ValueError(f"an envelope must be a non-empty 1-D array, got shape {env.shape}")
  return env


def _gradient(values: np.ndarray) -> np.ndarray:
  """`np.gradient` over frames (axis 0); zeros for a single frame, which it cannot take."""
  return np.gradient(values, axis=0) if len(values) > 1 else np.zeros_like(values)


@functools.lru_cache(maxsize=8)
def _dct_ii(size: int, num: int) -> np.ndarray:
  """Essentia's `DCT` (type II, orthonormal scaling), the first `num` rows of `[size, size]`."""
  k = np.arange(num)[:, None]
  table = np.cos(np.pi / size * k * (np.arange(size) + 0.5)) * np.sqrt(2.0 / size)
  table[0] /= np.sqrt(2.0)
  table.setflags(write=False)
  return table


def _spectral_complexity(s: np.ndarray, hz: np.ndarray) -> np.ndarray:
  """Peaks per frame in 100-5000 Hz above 0.005 (`spectral_descriptors`), at most 100."""
  scale = hz[1]
  first = max(0, math.ceil(_PEAK_MIN_HZ / scale))
  # Interior peaks j need j + 1 < num_bins - 1, as in Essentia's PeakDetection walk.
  last = min(len(hz) - 3, int(_PEAK_MAX_HZ // scale))
  count = np.zeros(len(s))
  if first + 1 < len(hz):
    # Essentia checks the range's first bin against its right neighbour alone.
    count += (s[:, first] > s[:, first + 1]) & (s[:, first] > _PEAK_THRESHOLD)
  lo = first + 1
  if lo <= last:
    mid = s[:, lo:last + 1]
    count += np.count_nonzero((mid > s[:, lo - 1:last]) & (mid > s[:, lo + 1:last + 2])
                              & (mid > _PEAK_THRESHOLD), axis=-1)
  return np.minimum(count, _MAX_PEAKS)


def _strong_peak(s: np.ndarray) -> float:
  """Essentia's `StrongPeak` of one spectrum (`spectral_descriptors`)."""
  peak = int(np.argmax(s))
  maximum = s[peak]
  if maximum == s.min():
    return 0.0
  below = s < maximum / 2
  left_below = np.flatnonzero(below[:peak])
  right_below = np.flatnonzero(below[peak:])
  left = left_below[-1] + 1 if left_below.size else 0
  right = peak + right_below[0] if right_below.size else len(s)
  if left == 0:
    return 0.0  # Essentia divides by log10(right / 0) = inf
  return float(maximum / math.log10(right / left))

