"""Paper 2's speech-recogniser baseline, a stand-in: one GMM-HMM per instrument "word", per user.

The published baseline (`src/models/GMM-HMM/run_perc.sh` of
github.com/alejandrodl/vocal-percussion-transcription) is Kaldi's standard recipe trained on all
users pooled: 13 MFCCs with per-speaker CMVN; monophone, then triphone models (tri1: deltas,
tri2b: LDA-MLLT, tri3b: speaker-adaptive fMLLR, the final model, .725 participant-wise and .734
boxeme-wise, PAPERS.md); a lexicon mapping each instrument to phoneme strings; a 3/4-gram SRILM
language model over instrument words; WFST decoding of whole takes. Kaldi, SRILM and that lexicon
are not available here, so this module is NOT that engine. It keeps what the engine brings to the
comparison, a sequence model of MFCC frames trained by EM, and fits it in the per-user protocol of
the other baselines (`classifiers`), so the figures aggregate the same way:

- Features (`mfcc_sequences`): 13 MFCCs on Kaldi's default framing (25 ms window, 10 ms shift,
  23 mel bands from 20 Hz, frames only where the window fits: Kaldi's "snip edges"), by librosa,
  per utterance after trimming the record's trailing zero padding.
- Acoustic model: per user and instrument, one left-to-right HMM shaped like a Kaldi phone model
  (3 emitting states, each a self-loop or a step to the next, starting in the first), each state
  a diagonal-covariance GMM (`hmmlearn.hmm.GMMHMM`). No triphones, no LDA-MLLT, no fMLLR.
- No lexicon and no language model: each record is one isolated utterance (the sets are already
  segmented at the annotated onsets), labelled with the instrument whose model gives it the
  highest forward log-likelihood (equal class priors). hmmlearn has no final-state constraint,
  so a sequence may end in any state.

Defaults, for a user with 6-24 utterances per class of about 10-40 frames (tens to hundreds of
frames per state): 3 states, Kaldi's phone topology (roughly attack, body, decay of a sound);
2 Gaussians per state, 54 parameters that tens of frames can estimate, where more would overfit
the smallest sets (Kaldi likewise grows its Gaussians with the data). A class whose smallest
state holds fewer than `MIN_FRAMES_PER_GAUSSIAN` frames per Gaussian gets fewer Gaussians (down
to 1); a class whose sequences leave a state without frames is an error.

Initialisation is Kaldi's flat start: every training sequence is cut into equal segments, one per
state (`align-equal`); each state starts as one Gaussian of its frames, split into `num_mix` by
seeded random offsets of half a standard deviation (Kaldi's mixing up), with equal weights and
self-loops at 0.75 (Kaldi's topology); EM then re-estimates transitions, means, variances and
weights. hmmlearn's own initialisation is skipped: it clusters frames without their time order,
costs most of a fit, and draws from NumPy's global (unseeded) generator when a cluster has fewer
frames than Gaussians. GMMHMM's M-step has no variance floor, so a Gaussian on identical frames
(silence clipped at librosa's 80 dB floor) would reach variance 0; an inverse-gamma prior worth
`prior_frames` frames at unit variance keeps every variance positive. Each user's frames are
z-scored per dimension with the mean and std of that user's training frames (Kaldi applies
per-speaker CMVN): a per-dimension affine map would change no class's likelihood ranking, but it
gives that prior the same weight in every dimension (c0 spans tens of dB, c12 a few). Test
records never reach fitting or these statistics. Host-side (NumPy, librosa, hmmlearn), never traced.
"""

import dataclasses
from typing import List, Sequence, Tuple

import librosa
import numpy as np
from hmmlearn import hmm

from soundjax import checks
from soundjax.experiments.vocal_percussion import classifiers

METHOD = "gmm_hmm"
# Kaldi's `compute-mfcc-feats` defaults.
FRAME_SECONDS = 0.025
HOP_SECONDS = 0.010
NUM_MEL_BANDS = 23
LOW_FREQUENCY = 20.0
NUM_MFCC = 13
# Kaldi's initial self-loop probability of an HMM state (its default topology).
INITIAL_SELF_LOOP = 0.75
# Frames per Gaussian below which a state's mixture is made smaller (module docstring).
MIN_FRAMES_PER_GAUSSIAN = 4
# The spread, in standard deviations, of the Gaussians split from a state's one at the start.
MIXUP_PERTURBATION = 0.5
_STD_EPSILON = 1e-8


def mfcc_sequences(audio: np.ndarray, sample_rate: float, *, num_mfcc: int = NUM_MFCC,
                   frame_seconds: float = FRAME_SECONDS, hop_seconds: float = HOP_SECONDS,
                   num_mels: int = NUM_MEL_BANDS, fmin: float = LOW_FREQUENCY,
                   min_frames: int = 5) -> List[np.ndarray]:
  """Per-utterance MFCC frame sequences, each utterance trimmed of its trailing zeros.

  Each record is cut after its last non-zero sample (records are zero from the next onset on),
  but kept long enough for `min_frames` frames (zero-padded if the record is shorter), then
  `librosa.feature.mfcc(y, sr, n_mfcc=num_mfcc, n_fft=2**ceil(log2(window)), win_length=window,
  hop_length=hop, n_mels=num_mels, fmin=fmin, center=False)`, transposed.

  Args:
    audio: `[num_utterances, samples]`, finite.
    sample_rate: Hz.
    num_mfcc: coefficients per frame (Kaldi's and the published 13).
    frame_seconds: the analysis window (Kaldi: 25 ms).
    hop_seconds: the frame shift (Kaldi: 10 ms).
    num_mels: mel bands (Kaldi: 23).
    fmin: the lowest band edge in Hz (Kaldi: 20).
    min_frames: the fewest frames of a sequence (a silent record gets this many).

  Returns:
    A list of `num_utterances` float64 arrays `[frames_i, num_mfcc]`, `frames_i >= min_frames`.

  Example:
    >>> clip = np.zeros((1, 8000))
    >>> clip[0, :1600] = np.random.default_rng(0).normal(size=1600)
    >>> [s.shape for s in mfcc_sequences(clip, 16000)]
    [(7, 13)]
  """
  audio = np.asarray(audio, np.float64)
  if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
    raise ValueError(f"audio must be [num_utterances, samples] with both non-zero, got shape "
                     f"{audio.shape}")
  if not np.all(np.isfinite(audio)):
    raise ValueError("audio is not finite (NaN or inf)")
  sample_rate = checks.positive("sample_rate", sample_rate)
  checks.integer("num_mfcc", num_mfcc, 1)
  checks.integer("min_frames", min_frames, 1)
  window = int(round(checks.positive("frame_seconds", frame_seconds) * sample_rate))
  hop = int(round(checks.positive("hop_seconds", hop_seconds) * sample_rate))
  if window < 2 or hop < 1:
    raise ValueError(f"frame_seconds and hop_seconds give {window} and {hop} samples at "
                     f"{sample_rate} Hz; need at least 2 and 1")
  n_fft = 1 << (window - 1).bit_length()  # Kaldi rounds the window up to a power of two
  shortest = n_fft + (min_frames - 1) * hop
  sequences = []
  for clip in audio:
    nonzero = np.flatnonzero(clip)
    end = max(nonzero[-1] + 1 if nonzero.size else 0, shortest)
    clip = np.pad(clip, (0, max(0, end - len(clip))))[:end]
    mfcc = librosa.feature.mfcc(y=clip, sr=sample_rate, n_mfcc=num_mfcc, n_fft=n_fft,
                                win_length=window, hop_length=hop, n_mels=num_mels, fmin=fmin,
                                center=False)
    sequences.append(np.asarray(mfcc.T, np.float64))
  return sequences


@dataclasses.dataclass(frozen=True)
class Recogniser:
  """One fitted GMM-HMM per class, over z-scored frames.

  Attributes:
    classes: `[num_classes]` the training labels, sorted (the columns of `log_likelihoods`).
    models: the fitted `hmm.GMMHMM` of each class, in `classes` order.
    mean: `[dims]` the training frames' mean, subtracted before scoring.
    scale: `[dims]` the training frames' std (+1e-8), divided by before scoring.
  """
  classes: np.ndarray
  models: Tuple[hmm.GMMHMM, ...]
  mean: np.ndarray
  scale: np.ndarray

  def log_likelihoods(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
    """`[num_sequences, num_classes]` forward log-likelihoods of each sequence under each model."""
    sequences = _sequences(sequences, "sequences", dims=len(self.mean))
    return np.array([[model.score((x - self.mean) / self.scale) for model in self.models]
                     for x in sequences])

  def predict(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
    """The maximum-likelihood class of each sequence."""
    return self.classes[np.argmax(self.log_likelihoods(sequences), axis=1)]


def fit_recogniser(sequences: Sequence[np.ndarray], labels: np.ndarray, *, num_states: int = 3,
                   num_mix: int = 2, num_iter: int = 10, prior_frames: float = 1.0,
                   seed: int = 0) -> Recogniser:
  """Fits one left-to-right GMM-HMM per class on that class's sequences (module docstring).

  Args:
    sequences: `num_records` arrays `[frames_i, dims]`, finite, `frames_i >= 1`.
    labels: `[num_records]` class labels.
    num_states: emitting states per model (Kaldi's phone: 3).
    num_mix: diagonal Gaussians per state, at most (fewer where a state has few frames).
    num_iter: EM iterations at most (hmmlearn stops earlier at a log-likelihood gain below 0.01).
      10: on the synthetic set (8 users, 24 utterances per class) they score as 20 do (.958 and
      .961) in half the time; hmmlearn's E-step costs about 2 ms a sequence on 2 cores.
    prior_frames: pseudo-frames at unit variance added to every Gaussian's variance estimate
      (an inverse-gamma prior; module docstring), so none collapses to 0.
    seed: seeds the mixing-up perturbations and hmmlearn's random state.

  Returns:
    A `Recogniser`.

  Raises:
    ValueError: bad arguments, or a class whose sequences leave a state without frames.

  Example:
    >>> rng = np.random.default_rng(0)
    >>> xs = [rng.normal(size=(9, 2)) + 4 * (k % 2) for k in range(8)]
    >>> fit_recogniser(xs, np.arange(8) % 2).predict([np.full((6, 2), 4.0)])
    array([1])
  """
  sequences = _sequences(sequences, "sequences")
  labels = np.asarray(labels)
  if labels.shape != (len(sequences),):
    raise ValueError(f"labels has shape {labels.shape}, expected ({len(sequences)},) "
                     "(one per sequence)")
  checks.integer("num_states", num_states, 1)
  checks.integer("num_mix", num_mix, 1)
  checks.integer("num_iter", num_iter, 1)
  checks.positive("prior_frames", prior_frames)
  checks.integer("seed", seed, 0)
  frames = np.concatenate(sequences)
  mean, scale = frames.mean(axis=0), frames.std(axis=0) + _STD_EPSILON
  scaled = [(x - mean) / scale for x in sequences]
  classes = np.unique(labels)
  models = tuple(
      _fit_class([x for x, y in zip(scaled, labels) if y == label], label.item(),
                 num_states=num_states, num_mix=num_mix, num_iter=num_iter,
                 prior_frames=prior_frames, seed=seed)
      for label in classes)
  return Recogniser(classes, models, mean, scale)


def per_user_accuracy(sequences: Sequence[np.ndarray], labels: np.ndarray, users: np.ndarray,
                      is_train: np.ndarray, *, seed: int = 0,
                      **options) -> classifiers.UserAccuracies:
  """For each user: fit the recogniser on that user's train records, score their test records.

  The protocol and return type of `classifiers.per_user_accuracy`, with one method, `METHOD`.

  Args:
    sequences: `num_records` arrays `[frames_i, dims]` (e.g. `mfcc_sequences`), finite.
    labels: `[num_records]` class labels (published: the instrument).
    users: `[num_records]` user ids.
    is_train: `[num_records]` booleans, True for a training-take record.
    seed: passed to `fit_recogniser`.
    **options: `fit_recogniser`'s other keyword arguments (`num_states`, `num_mix`, ...).

  Returns:
    `classifiers.UserAccuracies` with `methods == ("gmm_hmm",)`.

  Raises:
    ValueError: mismatched lengths, bad sequences, or a user without training or test records.
  """
  sequences = _sequences(sequences, "sequences")
  labels, users, is_train = np.asarray(labels), np.asarray(users), np.asarray(is_train)
  for name, values in (("labels", labels), ("users", users), ("is_train", is_train)):
    if values.shape != (len(sequences),):
      raise ValueError(f"{name} has shape {values.shape}, expected ({len(sequences)},) "
                       "(one per sequence)")
  user_ids = classifiers.protocol_users(users, is_train)
  accuracy = np.zeros((len(user_ids), 1))
  num_test = np.zeros(len(user_ids), np.int64)
  for row, user in enumerate(user_ids):
    train = np.flatnonzero((users == user) & is_train)
    test = np.flatnonzero((users == user) & ~is_train)
    recogniser = fit_recogniser([sequences[i] for i in train], labels[train], seed=seed,
                                **options)
    predictions = recogniser.predict([sequences[i] for i in test])
    accuracy[row, 0] = np.mean(predictions == labels[test])
    num_test[row] = len(test)
  return classifiers.UserAccuracies(user_ids, (METHOD,), accuracy, num_test)


class _FlatStartGMMHMM(hmm.GMMHMM):
  """`hmm.GMMHMM` whose EM starts from the parameters set on it.

  GMMHMM's `_init` runs k-means (1 + num_states fits of 10 restarts) on every `fit`, even with
  `init_params=""` when it discards the result: most of a fit's time here. The flat start sets
  every parameter, so only the feature count is taken from the data.
  """

  def _init(self, X, lengths=None):
    del lengths  # the flat start has used them
    self._check_and_set_n_features(X)


def _fit_class(sequences: List[np.ndarray], label, *, num_states: int, num_mix: int,
               num_iter: int, prior_frames: float, seed: int) -> hmm.GMMHMM:
  """A flat-started left-to-right GMM-HMM fit by EM on one class's (z-scored) sequences."""
  # Flat start: each sequence cut into num_states consecutive, near-equal segments.
  states = [np.concatenate([np.array_split(x, num_states)[s] for x in sequences])
            for s in range(num_states)]
  fewest = min(len(frames) for frames in states)
  if fewest == 0:
    longest = max(len(x) for x in sequences)
    raise ValueError(f"class {label!r} has {len(sequences)} training sequences of at most "
                     f"{longest} frames, too short for {num_states} states: each state needs "
                     "frames (give sequences of at least num_states frames)")
  mix = int(np.clip(fewest // MIN_FRAMES_PER_GAUSSIAN, 1, num_mix))
  rng = np.random.default_rng(seed)
  means, covars = [], []
  for frames in states:
    # The same shrinkage as the EM's variance prior (below), so no variance starts at 0.
    variance = (np.sum((frames - frames.mean(0)) ** 2, 0) + prior_frames) / (
        len(frames) + prior_frames)
    # Kaldi's mixing up: Gaussians split from the state's one by seeded random perturbations.
    offsets = (MIXUP_PERTURBATION * np.sqrt(variance) * rng.standard_normal((mix, len(variance)))
               if mix > 1 else 0.0)
    means.append(frames.mean(0) + np.zeros((mix, 1)) + offsets)
    covars.append(np.broadcast_to(variance, (mix, len(variance))))
  transmat = np.diag(np.full(num_states, INITIAL_SELF_LOOP))
  transmat += np.diag(np.full(num_states - 1, 1.0 - INITIAL_SELF_LOOP), k=1)
  transmat[-1, -1] = 1.0
  # hmmlearn's inverse-gamma variance prior with covars_prior a = (v - 3) / 2 and covars_weight
  # b = v / 2 gives the M-step variance (squared deviations + v) / (occupancy + v): v pseudo-frames
  # at the z-scored frames' variance 1, so a Gaussian on identical (e.g. silent) frames keeps a
  # positive variance; GMMHMM's M-step applies no `min_covar` floor of its own.
  model = _FlatStartGMMHMM(
      n_components=num_states, n_mix=mix, covariance_type="diag",
      covars_prior=(prior_frames - 3.0) / 2.0, covars_weight=prior_frames / 2.0,
      n_iter=num_iter, random_state=seed, params="tmcw", init_params="")
  # The start stays in state 0 ("s" is not re-estimated); zero transitions stay zero under EM.
  model.startprob_ = np.eye(num_states)[0]
  model.transmat_ = transmat
  model.means_, model.covars_ = np.stack(means), np.stack(covars)
  model.weights_ = np.full((num_states, mix), 1.0 / mix)
  return model.fit(np.concatenate(sequences), [len(x) for x in sequences])


def _sequences(sequences, name: str, dims=None) -> List[np.ndarray]:
  """A non-empty list of finite float64 `[frames >= 1, dims]` arrays of one width, checked."""
  if isinstance(sequences, np.ndarray) and sequences.ndim != 3:
    raise ValueError(f"{name} must be a list of [frames, dims] arrays, got an array of shape "
                     f"{sequences.shape}")
  sequences = [np.asarray(x, np.float64) for x in sequences]
  if not sequences:
    raise ValueError(f"{name} is empty")
  if dims is None:
    dims = sequences[0].shape[1] if sequences[0].ndim == 2 else "dims"
  for i, x in enumerate(sequences):
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != dims:
      raise ValueError(f"{name}[{i}] must be [frames >= 1, {dims}], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name}[{i}] is not finite (NaN or inf)")
  return sequences
