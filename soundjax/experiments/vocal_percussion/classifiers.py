"""Paper 2's per-user protocol: a small classifier per user, fit on that user's takes only.

For each evaluation user, a classifier is fit on the features (embeddings or engineered features)
of that user's training takes and scored on the same user's test take; the published code is
`src/results/eval_knn.py` (KNN) and `src/results/eval_alt.py` (logistic regression, random forest,
XGBoost) of github.com/alejandrodl/vocal-percussion-transcription. What they do, and is done here:

- Normalisation, identical in both files, before every classifier: each dimension is z-scored with
  the mean and (population) standard deviation of the user's train *and* test features stacked
  together, then the whole matrix once more with the mean and standard deviation of all its
  values ("z-scored per dimension, then globally"), each time dividing by `std + 1e-16`. Test
  *labels* are never used, but test *features* are (transductive statistics); `transductive=False`
  takes the statistics from the training features only, for a protocol where no part of a test
  take reaches fitting.
- KNN: `KNeighborsClassifier(n_neighbors=k)`, k in 3, 5, 7, 9, 11. The published "KNN" figure is
  the mean over the five k (`eval_knn.py` averages the k axis with the users, folds and seeds);
  `average_knn` gives it.
- Logistic regression: `LogisticRegression(solver="liblinear")`. That solver fits one-vs-rest,
  which scikit-learn >= 1.8 only does through `OneVsRestClassifier`, so it is wrapped (the same
  binary fits and argmax). Its shuffling is seeded here (the published call leaves it unseeded).
- Random forest: `RandomForestClassifier(random_state=seed)`, scikit-learn's defaults otherwise
  (`eval_alt.py` repeats it with seeds 0-4).
- XGBoost (also in `eval_alt.py`) is not a dependency here and is left out.
- Participant-wise accuracy = the mean of the users' accuracies; boxeme-wise = the users'
  accuracies weighted by their numbers of test items (`eval_knn.py`: weights = test counts / their
  sum, `accuracies * weights * 8` then a mean over the 8 users, i.e. the weighted mean).

Everything here is host-side NumPy and scikit-learn, on features already computed.
"""

import dataclasses
from typing import Dict, Mapping, NamedTuple, Sequence, Tuple

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier

# The k of the published KNN (eval_knn.py, `n_neighborss`).
KNN_NEIGHBOURS = (3, 5, 7, 9, 11)
# The single source of truth for method names: name -> k for KNN, None for the others.
METHODS: Dict[str, object] = {
    **{f"knn_{k}": k for k in KNN_NEIGHBOURS},
    "logistic_regression": None,
    "random_forest": None,
}
KNN_METHODS = tuple(f"knn_{k}" for k in KNN_NEIGHBOURS)
# The published normalisation divides by std + this, so a constant dimension maps to zeros.
_STD_EPSILON = 1e-16


class Score(NamedTuple):
  """One classifier's test accuracy and its predicted labels, in test order."""
  accuracy: float
  predictions: np.ndarray


def normalize_features(train_features: np.ndarray, test_features: np.ndarray, *,
                       transductive: bool = True) -> Tuple[np.ndarray, np.ndarray]:
  """The published normalisation: z-score per dimension, then globally (module docstring).

  Args:
    train_features: `[num_train, dims]`.
    test_features: `[num_test, dims]`.
    transductive: statistics from train and test features stacked, as published (`eval_knn.py`,
      `eval_alt.py`); False: from the training features only.

  Returns:
    `(train, test)` normalised, float64.

  Example:
    >>> train, test = normalize_features(np.array([[0.0], [2.0]]), np.array([[4.0]]))
  """
  train = np.asarray(train_features, np.float64)
  test = np.asarray(test_features, np.float64)
  reference = np.concatenate([train, test]) if transductive else train
  mean, std = reference.mean(axis=0), reference.std(axis=0)
  train, test = (train - mean) / (std + _STD_EPSILON), (test - mean) / (std + _STD_EPSILON)
  # The global pass is over every value of the (re-scaled) reference matrix.
  reference = np.concatenate([train, test]) if transductive else train
  mean, std = reference.mean(), reference.std()
  return (train - mean) / (std + _STD_EPSILON), (test - mean) / (std + _STD_EPSILON)


def make_classifier(method: str, *, seed: int):
  """The unfitted scikit-learn estimator of a method of `METHODS` (module docstring)."""
  _check_method(method)
  if method in KNN_METHODS:
    return KNeighborsClassifier(n_neighbors=METHODS[method])
  if method == "logistic_regression":
    return OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=seed))
  return RandomForestClassifier(random_state=seed)


def fit_and_score(train_features: np.ndarray, train_labels: np.ndarray,
                  test_features: np.ndarray, test_labels: np.ndarray, *, method: str,
                  seed: int = 0, transductive: bool = True) -> Score:
  """Normalises as published, fits `method` on the training records, scores the test records.

  Args:
    train_features: `[num_train, dims]`, finite.
    train_labels: `[num_train]` class labels.
    test_features: `[num_test, dims]`, finite.
    test_labels: `[num_test]` class labels.
    method: a name of `METHODS`.
    seed: seeds the random forest and liblinear's shuffling.
    transductive: see `normalize_features`.

  Returns:
    `Score(accuracy, predictions)`.

  Example:
    >>> x = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> fit_and_score(x, y, np.array([[0.05], [5.05]]), np.array([0, 1]), method="knn_3").accuracy
    1.0
  """
  _check_method(method)
  train_x, train_y = _records(train_features, train_labels, "train")
  test_x, test_y = _records(test_features, test_labels, "test")
  if train_x.shape[1] != test_x.shape[1]:
    raise ValueError(f"train features have {train_x.shape[1]} dimensions, test features "
                     f"{test_x.shape[1]}")
  k = METHODS[method]
  if k is not None and len(train_x) < k:
    raise ValueError(f"{method} needs at least {k} training records, got {len(train_x)}")
  train_x, test_x = normalize_features(train_x, test_x, transductive=transductive)
  classifier = make_classifier(method, seed=seed).fit(train_x, train_y)
  predictions = classifier.predict(test_x)
  return Score(float(np.mean(predictions == test_y)), predictions)


@dataclasses.dataclass(frozen=True)
class UserAccuracies:
  """Per-user accuracies of each method and the two published aggregates.

  Attributes:
    users: the user ids, sorted (the rows of `accuracy`).
    methods: the method names (the columns of `accuracy`).
    accuracy: `[num_users, num_methods]` test accuracies.
    num_test: `[num_users]` test records per user.
  """
  users: Tuple
  methods: Tuple[str, ...]
  accuracy: np.ndarray
  num_test: np.ndarray

  @property
  def participant_wise(self) -> Dict[str, float]:
    """Method -> mean accuracy over users."""
    return dict(zip(self.methods, participant_wise(self.accuracy).tolist()))

  @property
  def boxeme_wise(self) -> Dict[str, float]:
    """Method -> accuracy over users weighted by their numbers of test items."""
    return dict(zip(self.methods, boxeme_wise(self.accuracy, self.num_test).tolist()))


def participant_wise(accuracy: np.ndarray) -> np.ndarray:
  """Mean over users (axis 0) of `[num_users, ...]` accuracies."""
  return np.mean(np.asarray(accuracy, np.float64), axis=0)


def boxeme_wise(accuracy: np.ndarray, num_test: np.ndarray) -> np.ndarray:
  """Users' accuracies (axis 0) weighted by `num_test / sum(num_test)`, as `eval_knn.py`."""
  accuracy = np.asarray(accuracy, np.float64)
  weights = np.asarray(num_test, np.float64)
  if weights.shape != accuracy.shape[:1] or np.any(weights < 0) or weights.sum() <= 0:
    raise ValueError(f"num_test must be {accuracy.shape[:1]} non-negative counts with a positive "
                     f"sum, got {weights.tolist()}")
  return np.tensordot(weights / weights.sum(), accuracy, axes=1)


def average_knn(scores: Mapping[str, float]) -> float:
  """The published "KNN" figure: the mean of the `knn_*` entries of `scores` over k."""
  values = [scores[m] for m in KNN_METHODS if m in scores]
  if not values:
    raise ValueError(f"no KNN method among {sorted(scores)}")
  return float(np.mean(values))


def per_user_accuracy(features: np.ndarray, labels: np.ndarray, users: np.ndarray,
                      is_train: np.ndarray, *, methods: Sequence[str] = tuple(METHODS),
                      seed: int = 0, transductive: bool = True) -> UserAccuracies:
  """For each user: fit each method on that user's train records, score their test records.

  Args:
    features: `[num_records, dims]`, finite.
    labels: `[num_records]` class labels (published: the instrument).
    users: `[num_records]` user ids.
    is_train: `[num_records]` booleans, True for a training-take record.
    methods: names of `METHODS`.
    seed: passed to `fit_and_score`.
    transductive: passed to `fit_and_score`.

  Returns:
    `UserAccuracies`; `.participant_wise` and `.boxeme_wise` are the published aggregates.

  Raises:
    ValueError: mismatched lengths, non-finite features, an unknown method, or a user without
      training or test records.
  """
  features, labels = _records(features, labels, "all")
  users, is_train = np.asarray(users), np.asarray(is_train)
  for name, values in (("users", users), ("is_train", is_train)):
    if values.shape != labels.shape:
      raise ValueError(f"{name} has shape {values.shape}, expected {labels.shape} (one per record)")
  methods = tuple(methods)
  for method in methods:
    _check_method(method)
  if not methods:
    raise ValueError("methods is empty")
  user_ids = protocol_users(users, is_train)
  accuracy = np.zeros((len(user_ids), len(methods)))
  num_test = np.zeros(len(user_ids), np.int64)
  for row, user in enumerate(user_ids):
    train, test = (users == user) & is_train, (users == user) & ~is_train
    num_test[row] = int(test.sum())
    for col, method in enumerate(methods):
      accuracy[row, col] = fit_and_score(features[train], labels[train], features[test],
                                         labels[test], method=method, seed=seed,
                                         transductive=transductive).accuracy
  return UserAccuracies(user_ids, methods, accuracy, num_test)


def protocol_users(users: np.ndarray, is_train: np.ndarray) -> Tuple:
  """The sorted user ids of a per-user protocol, each checked (before any fitting, so a bad
  split fails at once) to have training and test records.

  Raises:
    ValueError: `is_train` is not boolean, or a user lacks training or test records.
  """
  if is_train.dtype != np.bool_:
    raise ValueError(f"is_train must be booleans, got dtype {is_train.dtype}")
  user_ids = tuple(np.unique(users).tolist())
  for user in user_ids:
    num_train = int(np.sum((users == user) & is_train))
    num_user_test = int(np.sum((users == user) & ~is_train))
    if not num_train or not num_user_test:
      raise ValueError(f"user {user!r} has {num_train} training and {num_user_test} test "
                       "records; the protocol needs both")
  return user_ids


def _check_method(method: str) -> None:
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; expected one of {tuple(METHODS)}")


def _records(features, labels, what: str) -> Tuple[np.ndarray, np.ndarray]:
  """Features as `[n, dims]` float64 and labels as `[n]`, checked."""
  features, labels = np.asarray(features, np.float64), np.asarray(labels)
  if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
    raise ValueError(f"{what} features must be [records, dims] and labels [records] of the same "
                     f"length, got shapes {features.shape} and {labels.shape}")
  if len(features) == 0:
    raise ValueError(f"{what} has no records")
  if not np.all(np.isfinite(features)):
    bad = np.argwhere(~np.isfinite(features))[0]
    raise ValueError(f"{what} features are not finite (NaN or inf), first at record {bad[0]}, "
                     f"dimension {bad[1]}")
  return features, labels
