"""The GMM-HMM recogniser baseline on sequences drawn from known left-to-right HMMs, and its MFCCs
against librosa."""

import librosa
import numpy as np
import pytest

from soundjax.experiments.vocal_percussion import classifiers
from soundjax.experiments.vocal_percussion import recogniser as rec

# Three states' means; every class visits all three, in its own order, so the classes have the
# same distribution of frames and only a model of their order can tell them apart.
STATE_MEANS = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, 0.0, 4.0, 0.0], [0.0, 4.0, 0.0, 4.0]])
ORDERS = ((0, 1, 2), (2, 1, 0), (1, 2, 0))
NOISE = 0.5


def draw(rng, labels):
  """One sequence per label: 3-6 frames in each state of that class's order, plus noise."""
  out = []
  for label in labels:
    durations = rng.integers(3, 7, size=3)
    out.append(np.concatenate([STATE_MEANS[s] + NOISE * rng.normal(size=(d, 4))
                               for s, d in zip(ORDERS[label], durations)]))
  return out


def split(seed=0, per_class=9, test_per_class=6):
  rng = np.random.default_rng(seed)
  train_y = np.repeat(np.arange(3), per_class)
  test_y = np.repeat(np.arange(3), test_per_class)
  return draw(rng, train_y), train_y, draw(rng, test_y), test_y


def two_users():
  """Users "a" and "b", each with their own train and test records, "b"'s a bit fewer."""
  train_a, y_a, test_a, t_a = split(0)
  train_b, y_b, test_b, t_b = split(1, test_per_class=4)
  sequences = train_a + test_a + train_b + test_b
  labels = np.concatenate([y_a, t_a, y_b, t_b])
  users = np.array(["a"] * (len(y_a) + len(t_a)) + ["b"] * (len(y_b) + len(t_b)))
  is_train = np.concatenate([np.ones(len(y_a), bool), np.zeros(len(t_a), bool),
                             np.ones(len(y_b), bool), np.zeros(len(t_b), bool)])
  return sequences, labels, users, is_train


def test_recognises_the_order_of_states():
  train, train_y, test, test_y = split()
  model = rec.fit_recogniser(train, train_y, seed=0)
  np.testing.assert_array_equal(model.classes, [0, 1, 2])
  assert all(m.n_components == 3 and m.n_mix == 2 for m in model.models)
  np.testing.assert_array_equal(model.predict(test), test_y)
  # Left-to-right: the fitted transitions never go back, and every model starts in state 0.
  for m in model.models:
    np.testing.assert_array_equal(np.tril(m.transmat_, -1), 0.0)
    np.testing.assert_array_equal(m.startprob_, [1.0, 0.0, 0.0])
  # A bag of frames cannot do it: the frames' mean is the same for every class.
  means = np.array([np.concatenate([x for x, y in zip(train, train_y) if y == k]).mean(0)
                    for k in range(3)])
  assert np.ptp(means, axis=0).max() < 1.0


def test_labels_unrelated_to_the_sequences_give_chance():
  train, train_y, test, test_y = split()
  # Each label holds exactly a third of every true class, so no label means anything.
  within = np.concatenate([np.arange(9)] * 3)
  shuffled = (train_y + within) % 3
  accuracy = np.mean(rec.fit_recogniser(train, shuffled).predict(test) == test_y)
  assert accuracy < 0.6  # chance 1/3; the true labels give 1.0


def test_deterministic_per_seed():
  train, train_y, test, _ = split()
  first = rec.fit_recogniser(train, train_y, seed=3).log_likelihoods(test)
  again = rec.fit_recogniser(train, train_y, seed=3).log_likelihoods(test)
  np.testing.assert_array_equal(first, again)
  other = rec.fit_recogniser(train, train_y, seed=4).log_likelihoods(test)
  assert not np.array_equal(first, other)  # the seed draws the mixtures' starting points


def test_few_frames_get_fewer_gaussians():
  rng = np.random.default_rng(5)
  # Two 4-frame sequences: 2-3 frames per state, below MIN_FRAMES_PER_GAUSSIAN for 2 Gaussians.
  short = [STATE_MEANS[[0, 1, 2, 2]] + NOISE * rng.normal(size=(4, 4)) for _ in range(2)]
  train, train_y, test, test_y = split()
  model = rec.fit_recogniser(short + train[9:], np.array([0, 0] + list(train_y[9:])))
  assert [m.n_mix for m in model.models] == [1, 2, 2]
  assert np.all(np.isfinite(model.log_likelihoods(test)))
  np.testing.assert_array_equal(model.predict(test[6:]), test_y[6:])
  # Identical (silent) frames keep a positive variance.
  flat = [np.zeros((6, 4))] * 3
  model = rec.fit_recogniser(flat + train[9:18], np.array([0] * 3 + [1] * 9))
  assert np.all(model.models[0].covars_ > 0)
  assert model.predict([np.zeros((5, 4))])[0] == 0


def test_per_user_protocol_and_aggregates():
  sequences, labels, users, is_train = two_users()
  labels = labels.copy()
  b_train = np.flatnonzero((users == "b") & is_train)
  labels[b_train] = (labels[b_train] + 1) % 3  # "b" trains on shifted labels: all wrong
  result = rec.per_user_accuracy(sequences, labels, users, is_train, seed=0)
  assert isinstance(result, classifiers.UserAccuracies)
  assert result.users == ("a", "b") and result.methods == ("gmm_hmm",)
  np.testing.assert_array_equal(result.num_test, [18, 12])
  np.testing.assert_array_equal(result.accuracy[:, 0], [1.0, 0.0])
  assert result.participant_wise == {"gmm_hmm": pytest.approx(0.5)}
  assert result.boxeme_wise == {"gmm_hmm": pytest.approx(18 / 30)}


def test_test_records_never_reach_fitting(monkeypatch):
  sequences, labels, users, is_train = two_users()
  fits = []

  def spy(train_sequences, train_labels, **kwargs):
    fits.append((train_sequences, train_labels))
    model = real(train_sequences, train_labels, **kwargs)
    fits[-1] += (model,)
    return model

  real = rec.fit_recogniser
  monkeypatch.setattr(rec, "fit_recogniser", spy)
  rec.per_user_accuracy(sequences, labels, users, is_train)
  for (passed, passed_labels, _), user in zip(fits, ("a", "b")):
    train = np.flatnonzero((users == user) & is_train)
    assert len(passed) == len(train)
    for x, i in zip(passed, train):
      np.testing.assert_array_equal(x, sequences[i])
    np.testing.assert_array_equal(passed_labels, labels[train])
  # Replacing every test record (contents and labels) leaves the fitted models as they were.
  poisoned = [x if t else 1e3 + 0 * x for x, t in zip(sequences, is_train)]
  clean = [model for *_, model in fits]
  fits.clear()
  rec.per_user_accuracy(poisoned, np.where(is_train, labels, 0), users, is_train)
  probe = draw(np.random.default_rng(9), [0, 1, 2])
  for before, (*_, after) in zip(clean, fits):
    np.testing.assert_array_equal(before.log_likelihoods(probe), after.log_likelihoods(probe))


def test_mfcc_sequences_match_librosa_and_trim_trailing_zeros():
  rate, samples = 16000, 6400
  rng = np.random.default_rng(0)
  audio = np.zeros((4, samples))
  audio[0, :3000] = rng.normal(size=3000)
  audio[1, :800] = rng.normal(size=800)
  audio[1, 2000:2400] = rng.normal(size=400)  # an inner gap of zeros is kept
  audio[2] = rng.normal(size=samples)  # no padding at all
  # audio[3] is silent.
  sequences = rec.mfcc_sequences(audio, rate)
  # Kaldi framing at 16 kHz: 400-sample window in a 512-point FFT, hop 160, only whole frames.
  assert [len(s) for s in sequences] == [1 + (3000 - 512) // 160, 1 + (2400 - 512) // 160,
                                        1 + (samples - 512) // 160, 5]
  expected = librosa.feature.mfcc(y=audio[0, :3000], sr=rate, n_mfcc=13, n_fft=512,
                                  win_length=400, hop_length=160, n_mels=23, fmin=20.0,
                                  center=False).T
  assert sequences[0].dtype == np.float64 and sequences[0].shape == (16, 13)
  np.testing.assert_allclose(sequences[0], expected, rtol=1e-5, atol=1e-4)
  assert np.all(np.isfinite(sequences[3]))
  # A record shorter than a window is padded to min_frames frames.
  assert [s.shape for s in rec.mfcc_sequences(audio[:1, :300], rate, min_frames=3)] == [(3, 13)]


def test_bad_input_raises_clear_errors():
  sequences, labels, users, is_train = two_users()
  with pytest.raises(ValueError, match="sequences is empty"):
    rec.fit_recogniser([], np.array([]))
  with pytest.raises(ValueError, match="user 'a' has 0 training and 45 test"):
    rec.per_user_accuracy(sequences, labels, users, np.where(users == "a", False, is_train))
  n = len(labels)
  with pytest.raises(ValueError, match=rf"labels has shape \({n - 1},\), expected \({n},\)"):
    rec.per_user_accuracy(sequences, labels[:-1], users, is_train)
  with pytest.raises(ValueError, match="users has shape"):
    rec.per_user_accuracy(sequences, labels, users[:-1], is_train)
  with pytest.raises(ValueError, match="booleans"):
    rec.per_user_accuracy(sequences, labels, users, is_train.astype(int))
  with pytest.raises(ValueError, match=r"sequences\[1\] must be \[frames >= 1, 4\]"):
    rec.fit_recogniser([np.zeros((5, 4)), np.zeros((5, 3))], np.array([0, 1]))
  with pytest.raises(ValueError, match=r"sequences\[0\] is not finite"):
    rec.fit_recogniser([np.full((5, 4), np.nan)], np.array([0]))
  with pytest.raises(ValueError, match="class 1 has 2 training sequences of at most 2 frames"):
    rec.fit_recogniser([np.zeros((5, 4)), np.ones((2, 4)), np.ones((1, 4))], np.array([0, 1, 1]))
  with pytest.raises(ValueError, match="num_states must be an integer >= 1"):
    rec.fit_recogniser(sequences, labels, num_states=0)
  with pytest.raises(ValueError, match="audio must be"):
    rec.mfcc_sequences(np.zeros(100), 16000)
