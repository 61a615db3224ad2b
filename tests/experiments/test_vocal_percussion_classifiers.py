"""Paper 2's per-user protocol on hand-made cases whose answers are worked out here."""

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from soundjax.experiments.vocal_percussion import classifiers as clf


def two_clusters():
  """Class 0 around (0, 0), class 1 around (5, 5): 3 training points each."""
  train = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [5.0, 5.0], [5.0, 6.0], [6.0, 5.0]])
  return train, np.array([0, 0, 0, 1, 1, 1])


def test_registry_is_the_published_methods():
  assert tuple(clf.METHODS) == ("knn_3", "knn_5", "knn_7", "knn_9", "knn_11",
                                "logistic_regression", "random_forest")
  assert clf.KNN_METHODS == tuple(m for m in clf.METHODS if m.startswith("knn_"))
  assert clf.average_knn({"knn_3": 0.5, "knn_5": 1.0, "random_forest": 0.0}) == 0.75


def test_knn_on_a_hand_made_case():
  train, labels = two_clusters()
  # The third test point lies in class 1's cluster but is labelled 0: 2 of 3 correct.
  test = np.array([[0.4, 0.4], [5.4, 5.4], [5.2, 5.2]])
  score = clf.fit_and_score(train, labels, test, np.array([0, 1, 0]), method="knn_3")
  np.testing.assert_array_equal(score.predictions, [0, 1, 1])
  assert score.accuracy == pytest.approx(2 / 3)


def test_normalisation_is_per_dimension_then_global():
  rng = np.random.default_rng(0)
  train = rng.normal(size=(20, 3)) * [1.0, 100.0, 1e-3] + [5.0, -3.0, 0.0]
  test = rng.normal(size=(7, 3)) * [1.0, 100.0, 1e-3]
  a, b = clf.normalize_features(train, test)
  both = np.concatenate([a, b])
  # The per-dimension pass leaves every column at mean 0, std 1; the global pass keeps the means
  # at 0 and divides by the overall std (1), so each column ends at mean 0 and std 1.
  np.testing.assert_allclose(both.mean(axis=0), 0.0, atol=1e-12)
  np.testing.assert_allclose(both.std(axis=0), 1.0, rtol=1e-12)
  # Train-only statistics: the training rows are standardised, the test rows are not.
  a, b = clf.normalize_features(train, test, transductive=False)
  np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-12)
  np.testing.assert_allclose(a.std(axis=0), 1.0, rtol=1e-12)
  assert not np.allclose(b.mean(axis=0), 0.0, atol=0.05)
  # A constant column maps to 0 (std + 1e-16), as published.
  a, b = clf.normalize_features(np.ones((3, 1)), np.ones((2, 1)))
  np.testing.assert_array_equal(np.concatenate([a, b]), 0.0)


def test_z_scoring_keeps_a_huge_noise_dimension_from_dominating():
  rng = np.random.default_rng(1)

  def draw(n):
    y = np.arange(n) % 2
    informative = (2.0 * y - 1.0)[:, None] + 0.1 * rng.normal(size=(n, 4))  # 4 dims at +-1
    noise = 1e4 * rng.uniform(size=(n, 1))  # label-free, and 1e4 times larger
    return np.concatenate([informative, noise], axis=1), y

  train_x, train_y = draw(40)
  test_x, test_y = draw(40)
  raw = KNeighborsClassifier(n_neighbors=3).fit(train_x, train_y).score(test_x, test_y)
  assert raw < 0.75  # unscaled, the neighbours are the noise dimension's
  score = clf.fit_and_score(train_x, train_y, test_x, test_y, method="knn_3")
  assert score.accuracy == 1.0


def two_users():
  """User "a": 4 test records, 3 correct; user "b": 2 test records, none correct (by k=3)."""
  train, labels = two_clusters()
  test_a = np.array([[0.2, 0.2], [0.3, 0.1], [5.5, 5.5], [5.1, 5.3]])
  test_b = np.array([[0.1, 0.3], [5.6, 5.2]])
  features = np.concatenate([train, test_a, train + 0.01, test_b])
  labels = np.concatenate([labels, [0, 0, 1, 0], labels, [1, 0]])
  users = np.array(["a"] * 10 + ["b"] * 8)
  is_train = np.array([True] * 6 + [False] * 4 + [True] * 6 + [False] * 2)
  return features, labels, users, is_train


def test_participant_wise_and_boxeme_wise_on_two_users():
  result = clf.per_user_accuracy(*two_users(), methods=("knn_3",))
  assert result.users == ("a", "b")
  np.testing.assert_array_equal(result.num_test, [4, 2])
  np.testing.assert_allclose(result.accuracy[:, 0], [3 / 4, 0.0])
  # Participant-wise: (3/4 + 0) / 2. Boxeme-wise: (3 + 0) correct of 4 + 2 test items.
  assert result.participant_wise == {"knn_3": pytest.approx(0.375)}
  assert result.boxeme_wise == {"knn_3": pytest.approx(0.5)}


def test_each_user_is_fit_on_their_own_records_only():
  # User "b"'s training labels are swapped: fit on "b" alone, its test points flip.
  features, labels, users, is_train = two_users()
  labels = labels.copy()
  labels[10:16] = 1 - labels[10:16]
  result = clf.per_user_accuracy(features, labels, users, is_train, methods=("knn_3",))
  np.testing.assert_allclose(result.accuracy[:, 0], [3 / 4, 1.0])


@pytest.mark.parametrize("method", ["logistic_regression", "random_forest"])
def test_other_classifiers_run_and_are_deterministic_per_seed(method):
  rng = np.random.default_rng(2)
  y = np.arange(60) % 3  # three classes: liblinear fits them one-vs-rest
  x = np.eye(3)[y] * 3.0 + rng.normal(size=(60, 3))
  first = clf.fit_and_score(x[:45], y[:45], x[45:], y[45:], method=method, seed=3)
  again = clf.fit_and_score(x[:45], y[:45], x[45:], y[45:], method=method, seed=3)
  np.testing.assert_array_equal(first.predictions, again.predictions)
  assert first.accuracy == again.accuracy >= 0.8
  features, labels, users, is_train = two_users()
  result = clf.per_user_accuracy(features, labels, users, is_train, methods=(method,), seed=0)
  assert result.accuracy.shape == (2, 1) and np.all((0 <= result.accuracy) & (result.accuracy <= 1))


def test_errors():
  features, labels, users, is_train = two_users()
  with pytest.raises(ValueError, match="user 'b' has 8 training and 0 test"):
    clf.per_user_accuracy(features, labels, users, np.where(users == "b", True, is_train))
  with pytest.raises(ValueError, match="user 'a' has 0 training"):
    clf.per_user_accuracy(features, labels, users, np.where(users == "a", False, is_train))
  with pytest.raises(ValueError, match="users has shape"):
    clf.per_user_accuracy(features, labels, users[:-1], is_train)
  with pytest.raises(ValueError, match="same length"):
    clf.per_user_accuracy(features[:-1], labels, users, is_train)
  with pytest.raises(ValueError, match="booleans"):
    clf.per_user_accuracy(features, labels, users, is_train.astype(int))
  bad = features.copy()
  bad[3, 1] = np.nan
  with pytest.raises(ValueError, match="not finite.*record 3, dimension 1"):
    clf.per_user_accuracy(bad, labels, users, is_train)
  with pytest.raises(ValueError, match="unknown method 'knn_4'"):
    clf.per_user_accuracy(features, labels, users, is_train, methods=("knn_4",))
  train, train_labels = two_clusters()
  with pytest.raises(ValueError, match="knn_7 needs at least 7 training records, got 6"):
    clf.fit_and_score(train, train_labels, train, train_labels, method="knn_7")
  with pytest.raises(ValueError, match="2 dimensions, test features 3"):
    clf.fit_and_score(train, train_labels, np.zeros((1, 3)), [0], method="knn_3")
  with pytest.raises(ValueError, match="non-negative counts"):
    clf.boxeme_wise(np.ones((2, 1)), [1, -1])
