"""PGD against the vocal percussion pipeline on a tiny embedding CNN (channels (2, 2), 16 x 16
patches) and 3 users: the budget and the patch range hold, eps 0 changes nothing and scores as the
clean embeddings do, the head loss rises, a sweep compiles once, train-take features stay clean,
two-head labels work, and bad settings name their field.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from soundjax import losses, models
from soundjax.checks import ConfigError
from soundjax.experiments.vocal_percussion import evaluate, features, robustness

SHAPE = (16, 16)
USERS, INSTRUMENTS, TRAIN_PER_INSTRUMENT, TEST_PER_USER = 3, 2, 3, 4
EPS = (0.0, 0.05, 0.2)
STEPS = 3
# Every call runs chunks of 4 (12 or 6 test takes, 18 train takes): one compile per function,
# and padded last chunks.
BATCH = 4


def _records():
  """3 users x (2 instruments x 3 isolated takes, then 4 improvised), and their patches: a pattern
  per instrument plus noise, in [0, 1] except one test patch with bins above 1 (a loud clip)."""
  rng = np.random.default_rng(0)
  user, instrument, is_train = [], [], []
  for u in range(USERS):
    for k in range(INSTRUMENTS):
      user += [u] * TRAIN_PER_INSTRUMENT
      instrument += [k] * TRAIN_PER_INSTRUMENT
      is_train += [True] * TRAIN_PER_INSTRUMENT
  for u in range(USERS):
    user += [u] * TEST_PER_USER
    instrument += [i % INSTRUMENTS for i in range(TEST_PER_USER)]
    is_train += [False] * TEST_PER_USER
  instrument = np.array(instrument)
  patterns = rng.uniform(0.2, 0.8, (INSTRUMENTS,) + SHAPE)
  patches = np.clip(patterns[instrument] + rng.normal(0, 0.1, (len(instrument),) + SHAPE), 0, 1)
  patches[-1, :2] = 1.3
  records = evaluate.Records(np.zeros((len(user), 1), np.float32), np.array(user), instrument,
                             np.array(is_train))
  return records, patches.astype(np.float32)


def _cross_entropy(model):
  return losses.per_example_loss(losses.model_logits(model), "softmax_cross_entropy")


@pytest.fixture(scope="module")
def setting():
  model = models.EmbeddingCNN(num_classes=3, embedding_dim=4, channels=(2, 2))
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1,) + SHAPE))
  records, patches = _records()
  config = ml_collections.ConfigDict({"classifiers": {
      "methods": ("knn_3", "knn_5", "logistic_regression"), "transductive": True}})
  pipe = robustness.make_pipeline(model, _cross_entropy(model), num_steps=STEPS)
  return dict(model=model, variables=variables, records=records, patches=patches,
              y=records.instrument, config=config, pipe=pipe)


def _test_takes(setting):
  """The 12 improvised-take patches (the loud one last) and their labels."""
  test = ~setting["records"].is_train
  return setting["patches"][test], setting["y"][test]


def _attack(setting, eps):
  """PGD on the test takes, in chunks of `BATCH` (the shape every other call compiles)."""
  x, y = _test_takes(setting)
  keys = jax.random.split(jax.random.key(1), len(x))
  return np.concatenate([
      setting["pipe"].attack(setting["variables"], x[i:i + BATCH], y[i:i + BATCH],
                             jnp.float32(eps), keys[i:i + BATCH])
      for i in range(0, len(x), BATCH)])


def _clean_embeddings(setting):
  """The embeddings straight from the module's batched `embed` method (not `embedding_fn`)."""
  embed = jax.jit(lambda v, x: setting["model"].apply(v, x, method=models.EmbeddingCNN.embed))
  return np.asarray(embed(setting["variables"], setting["patches"]), np.float64)


def test_patch_bounds_are_the_range_of_the_published_normalisation():
  # Written out from train_deep.py's constants: magnitude 0 -> 0, the set's max -> 1.
  def published(m):
    x = np.log(m / 3.7073483668036347 + 1e-4)
    return (x + 9.210340371976182) / (9.999500033329732e-05 + 9.210340371976182)
  assert robustness.PATCH_BOUNDS == pytest.approx((published(0.0), published(3.7073483668036347)))
  np.testing.assert_allclose(
      features.normalize_patch(jnp.array([0.0, 3.7073483668036347])), robustness.PATCH_BOUNDS,
      atol=1e-6)
  # One unit: 20 log10 of the log stage's ratio (1 + 1e-4) / 1e-4, i.e. 80 dB.
  assert robustness.DB_PER_UNIT == pytest.approx(20 * math.log10((1 + 1e-4) / 1e-4))


def test_attack_stays_in_the_linf_ball_and_the_patch_range(setting):
  x, eps = _test_takes(setting)[0], 0.05
  x_adv = _attack(setting, eps)
  delta = x_adv - x
  assert np.all(np.abs(delta) <= eps * (1 + 1e-5) + 1e-6)
  # The box [0, 1], widened to hold the clean patch: the loud bins may only come down.
  assert np.all(x_adv >= np.minimum(0.0, x)) and np.all(x_adv <= np.maximum(1.0, x))
  assert np.all(x_adv[-1, :2] <= 1.3)
  # Sign steps of 2.5 eps / 3 saturate the ball: most elements sit on its surface or the box.
  assert np.median(np.abs(delta)) > 0.5 * eps


def test_eps_zero_leaves_the_patches_unchanged(setting):
  np.testing.assert_array_equal(_attack(setting, 0.0), _test_takes(setting)[0])


def test_attack_raises_the_head_loss(setting):
  model, variables = setting["model"], setting["variables"]
  x, y = _test_takes(setting)
  eps = 0.05

  @jax.jit
  def loss(x):  # optax on the batched logits, not the per-example LossFn the attack ascends
    return optax.softmax_cross_entropy_with_integer_labels(model.apply(variables, x), y)

  signs = np.random.default_rng(5).choice([-1.0, 1.0], x.shape).astype(np.float32)
  noise = np.clip(x + eps * signs, np.minimum(0.0, x), np.maximum(1.0, x))
  before, after, random = (np.asarray(loss(v)) for v in (x, _attack(setting, eps), noise))
  assert np.all(after > before)
  # Far above what a random corner of the same ball does.
  assert np.mean(after - before) > 3 * np.mean(np.abs(random - before))


def test_budget_sweep_compiles_once(setting):
  model, traces = setting["model"], []
  loss_fn = _cross_entropy(model)

  def counted(variables, x, y):
    traces.append(1)
    return loss_fn(variables, x, y)

  attack = robustness.make_attack(counted, num_steps=1)
  x, y = setting["patches"][:4], setting["y"][:4]
  keys = jax.random.split(jax.random.key(0), 4)
  attack(setting["variables"], x, y, jnp.float32(0.0), keys)
  first = len(traces)
  for eps in (0.01, 0.1, 0.3):
    attack(setting["variables"], x, y, jnp.float32(eps), keys)
  assert first > 0 and len(traces) == first
  assert attack._cache_size() == 1  # pylint: disable=protected-access


def test_train_take_features_stay_clean_and_test_takes_move(setting):
  records = setting["records"]
  found = robustness.attacked_features(
      setting["pipe"], setting["variables"], setting["patches"], setting["y"], records,
      eps=EPS, key=jax.random.key(2), batch_size=BATCH)
  rows, reference = found["features"], _clean_embeddings(setting)
  train, test = records.is_train, ~records.is_train
  assert rows.shape == (len(EPS),) + reference.shape
  for level in rows:
    np.testing.assert_array_equal(level[train], rows[0][train])
  np.testing.assert_allclose(rows[0], reference, rtol=1e-5, atol=1e-6)
  assert np.all(np.abs(rows[1:, test] - rows[0, test]).max(axis=-1) > 1e-4)
  curve = found["curve"]
  assert [entry["eps"] for entry in curve] == list(EPS)
  assert curve[0]["head_changed"] == 0.0 and curve[0]["linf_mean"] == 0.0
  assert curve[0]["head_accuracy"] == found["head_accuracy_clean"]
  assert 0.0 < curve[1]["linf_mean"] <= EPS[1] * (1 + 1e-5)
  assert curve[2]["l2_mean"] > curve[1]["l2_mean"]


@pytest.mark.parametrize("clips_per_user", [None, 2])
def test_eps_zero_scores_equal_the_clean_scores(setting, clips_per_user):
  records, config = setting["records"], setting["config"]
  result = robustness.adversarial_scores(
      setting["pipe"], setting["variables"], setting["patches"], setting["y"], records, config,
      eps=EPS[:2], seed=0, key=jax.random.key(3), batch_size=BATCH, clips_per_user=clips_per_user)
  keep = np.ones(len(records.user), bool)
  if clips_per_user is not None:  # The first 2 improvised records of each user, written out.
    start = USERS * INSTRUMENTS * TRAIN_PER_INSTRUMENT
    keep = records.is_train.copy()
    for u in range(USERS):
      keep[start + u * TEST_PER_USER:start + u * TEST_PER_USER + clips_per_user] = True
  kept = evaluate.Records(records.audio[keep], records.user[keep], records.instrument[keep],
                          records.is_train[keep])
  clean = evaluate.scores(_clean_embeddings(setting)[keep], kept, config, 0)
  zero = result["curve"][0]
  for name in ("users", "num_test", "per_user", "participant_wise", "boxeme_wise"):
    assert zero[name] == clean[name], name
  assert result["num_attacked"] == USERS * (clips_per_user or TEST_PER_USER)
  assert zero["num_test"] == [clips_per_user or TEST_PER_USER] * USERS
  assert set(zero["participant_wise"]) == {"knn_3", "knn_5", "logistic_regression", "knn"}


def test_two_head_labels_of_shape_two(setting):
  model = models.EmbeddingCNN(num_classes=(3, 2), embedding_dim=4, channels=(2, 2))
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1,) + SHAPE))

  def loss_fn(v, x, y):  # the phoneme model's weighted pair, y = (onset, nucleus)
    onset, nucleus = (head[0] for head in model.apply(v, x[None], train=False))
    return (0.6 * optax.softmax_cross_entropy_with_integer_labels(onset, y[0])
            + 0.4 * optax.softmax_cross_entropy_with_integer_labels(nucleus, y[1]))

  pipe = robustness.make_pipeline(model, loss_fn, num_steps=2)
  records = setting["records"]
  y = np.stack([records.instrument, records.user % 2], axis=1)
  found = robustness.attacked_features(pipe, variables, setting["patches"], y, records,
                                       eps=(0.0, 0.2), key=jax.random.key(4), batch_size=BATCH)
  onset, nucleus = jax.jit(model.apply)(variables, setting["patches"][~records.is_train])
  truth = y[~records.is_train]
  expected = np.mean((np.argmax(onset, -1) == truth[:, 0])
                     & (np.argmax(nucleus, -1) == truth[:, 1]))
  assert found["head_accuracy_clean"] == pytest.approx(expected)
  assert found["curve"][0]["head_changed"] == 0.0
  assert found["curve"][1]["linf_mean"] > 0.0


def test_mean_std_and_table(setting):
  entry = {"eps": 0.01, "participant_wise": {"knn": 0.5}, "boxeme_wise": {"knn": 0.25},
           "head_changed": 0.5, "linf_mean": 0.01, "per_user": {"knn_3": [0.5]}}
  runs = [{"curve": [entry]}, {"curve": [{**entry, "participant_wise": {"knn": 1.0}}]}]
  summary = robustness.mean_std(runs)
  assert summary["eps"] == [0.01]
  assert summary["curve"][0]["mean"]["participant_wise"]["knn"] == 0.75
  assert summary["curve"][0]["std"]["participant_wise"]["knn"] == 0.25
  table = robustness.table({"instrument": summary})
  assert "| instrument | 0.01 | 0.8 | 0.750 ± 0.250 | 0.250 ± 0.000 |" in table


def test_defaults_pass_the_config_check():
  robustness.check_config(ml_collections.ConfigDict(robustness.DEFAULTS))
  robustness.check_config({**robustness.DEFAULTS, "eps": (0.0,), "clips_per_user": 4})


@pytest.mark.parametrize("field,value", [
    ("eps", (0.1, 0.0)), ("eps", (0.0, 0.0)), ("eps", (-0.01, 0.1)), ("eps", (0.0, math.inf)),
    ("eps", ()), ("eps", "0.1"), ("num_steps", 0), ("num_steps", 2.5), ("rel_step", 0.0),
    ("rel_step", math.nan), ("clips_per_user", 0), ("clips_per_user", 1.5), ("batch_size", 0),
])
def test_bad_settings_raise_naming_the_field(field, value):
  with pytest.raises(ConfigError, match=f"config.robustness.{field} "):
    robustness.check_config({**robustness.DEFAULTS, field: value})


def test_unknown_and_missing_settings_raise():
  with pytest.raises(ConfigError, match="config.robustness.esp .*did you mean 'eps'"):
    robustness.check_config({**robustness.DEFAULTS, "esp": (0.1,)})
  settings = dict(robustness.DEFAULTS)
  del settings["num_steps"]
  with pytest.raises(ConfigError, match="config.robustness.num_steps is missing"):
    robustness.check_config(settings)
