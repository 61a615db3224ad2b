"""Label smoothing in training: the loss a train step reports and minimises, against references
computed here from the logits (optax's `smooth_labels` and cross-entropy, and numpy by hand),
and a few training steps of a tiny config with `config.train.label_smoothing` set."""

import flax.linen as nn
import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import strategies as st

from soundjax import data, losses, training
from soundjax.training import loop as train
from tests.training.test_loop import tiny_config


class _Linear(nn.Module):
  classes: int

  @nn.compact
  def __call__(self, x, train=False):
    del train
    return nn.Dense(self.classes)(x)


def _dense_logits(params, x):
  """The `_Linear` model by hand, so the reference does not run the model's own code."""
  dense = params["Dense_0"]
  return x @ dense["kernel"] + dense["bias"][None, :]


def _numpy_smoothed_loss(name, logits, y, smoothing):
  """Mean smoothed cross-entropy, float64 numpy, from the formulas of the docs."""
  logits, y = np.asarray(logits, np.float64), np.asarray(y)
  if name == "softmax_cross_entropy":
    classes = logits.shape[-1]
    targets = (1 - smoothing) * np.eye(classes)[y] + smoothing / classes
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(np.mean(-np.sum(targets * log_p, axis=-1)))
  targets = y * (1 - smoothing) + smoothing / 2
  z = logits[..., 0]
  # -t log sigmoid(z) - (1 - t) log sigmoid(-z), with log sigmoid(z) = -log(1 + e^-z).
  return float(np.mean(targets * np.logaddexp(0, -z) + (1 - targets) * np.logaddexp(0, z)))


def _optax_smoothed_loss(name, logits, y, smoothing):
  """Mean smoothed cross-entropy with optax (differentiable in the logits)."""
  if name == "softmax_cross_entropy":
    targets = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), smoothing)
    return jnp.mean(optax.softmax_cross_entropy(logits, targets))
  targets = jnp.asarray(y, logits.dtype) * (1 - smoothing) + smoothing / 2
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits[..., 0], targets))


_TOY = {"softmax_cross_entropy": 3, "sigmoid_binary_cross_entropy": 1}


def _toy(name, seed=0):
  task = train.Task(model=_Linear(_TOY[name]), frontend=None, loss=name)
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(6, 2)).astype(np.float32)
  y = np.array([0, 1, 1, 0, 1, 0] if name != "softmax_cross_entropy" else [0, 1, 2, 2, 1, 0],
               np.int32)
  state = train.create_state(task, optax.sgd(0.5), x, jax.random.key(seed))
  # Confident logits (some wrong), so that the smoothed and plain losses differ clearly.
  kernel = np.array([[3.0, -2.0, 0.5], [-1.5, 2.5, 1.0]], np.float32)[:, :_TOY[name]]
  bias = np.array([0.5, -0.25, 0.0], np.float32)[:_TOY[name]]
  state = state.replace(params={"Dense_0": {"kernel": jnp.asarray(kernel),
                                            "bias": jnp.asarray(bias)}})
  return task, state, x, y


@pytest.mark.parametrize("name", sorted(_TOY))
@pytest.mark.parametrize("smoothing", [0.1, 0.4])
def test_train_step_reports_and_descends_the_smoothed_loss(name, smoothing):
  task, state, x, y = _toy(name)
  params = jax.tree.map(np.asarray, state.params)  # the step donates `state`
  logits = _dense_logits(params, x)
  want = _numpy_smoothed_loss(name, logits, y, smoothing)
  np.testing.assert_allclose(_optax_smoothed_loss(name, logits, y, smoothing), want, rtol=1e-6)
  plain = _numpy_smoothed_loss(name, logits, y, 0.0)
  assert abs(want - plain) > 1e-2 * abs(plain)  # Smoothing changes this loss visibly.
  grads = jax.grad(lambda p: _optax_smoothed_loss(name, _dense_logits(p, x), y, smoothing))(
      params)

  new_state, scalars = train.make_train_step(task, label_smoothing=smoothing)(
      state, x, y, jax.random.key(1))
  np.testing.assert_allclose(scalars["loss"], want, rtol=1e-5)
  # One SGD step at rate 0.5 along the gradient of the reference loss.
  for got, p, g in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(params),
                       jax.tree.leaves(grads)):
    np.testing.assert_allclose(got, p - 0.5 * g, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(_TOY))
def test_a_few_steps_lower_the_smoothed_loss(name):
  task, state, x, y = _toy(name, seed=1)
  smoothing = 0.2
  before = _numpy_smoothed_loss(name, _dense_logits(state.params, x), y, smoothing)
  step = train.make_train_step(task, label_smoothing=smoothing)
  reported = []
  for _ in range(8):
    state, scalars = step(state, x, y, jax.random.key(1))
    reported.append(float(scalars["loss"]))
  after = _numpy_smoothed_loss(name, _dense_logits(state.params, x), y, smoothing)
  assert after < 0.95 * before
  assert reported[0] == pytest.approx(before, rel=1e-5)
  assert all(b < a for a, b in zip(reported, reported[1:]))


def test_config_label_smoothing_sets_the_loss_train_minimises(tiny_data_dir, tiny_synth_settings,
                                                              tmp_path):
  smoothing, num_steps = 0.3, 9
  config = tiny_config(tiny_data_dir, tiny_synth_settings, num_steps=num_steps - 1, log_every=1,
                       eval_every=1000, checkpoint_every=1000, learning_rate=1e-2,
                       label_smoothing=smoothing)
  workdir = str(tmp_path)
  before_last = train.train(config, workdir).state
  # Resume for the last step: its logged loss is that of the state trained so far on batch
  # `num_steps - 1` of the stream (a function of the seed and the index), in train mode.
  builder = data.prepare_config(config.data)
  batch = data.batches(builder, "train", batch_size=8, seed=config.seed, shuffle=True,
                       num_epochs=None, drop_remainder=True)[num_steps - 1]
  task = train.build_task(config, data.num_classes(builder))
  logits, _ = task.model.apply(before_last.variables, task.features(batch["x"]), train=True,
                               mutable=["batch_stats"])
  want = _numpy_smoothed_loss(config.loss, logits, batch["y"], smoothing)
  plain = _numpy_smoothed_loss(config.loss, logits, batch["y"], 0.0)
  assert abs(want - plain) > 1e-2  # 40x the tolerance below: the plain loss would fail it
  config.train.num_steps = num_steps
  train.train(config, workdir)
  rows = [r for r in training.read_metrics(workdir) if r["split"] == "train"]
  assert [r["step"] for r in rows] == list(range(1, num_steps + 1))
  assert rows[-1]["loss"] == pytest.approx(want, rel=1e-4)
  # The logged (smoothed) loss fell while training.
  logged = [r["loss"] for r in rows]
  assert np.mean(logged[-3:]) < 0.95 * np.mean(logged[:3])


@pytest.mark.parametrize("name, logits, y, smoothing, targets", [
    # optax.smooth_labels: one_hot (1 - a) + a / K.
    ("softmax_cross_entropy", [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], [2, 0], 0.3,
     [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]),
    # The published 0.02 + 0.96 y.
    ("sigmoid_binary_cross_entropy", [[0.7], [-1.2], [2.5]], [1, 0, 0], 0.04,
     [0.98, 0.02, 0.02]),
])
def test_label_smoothing_matches_the_closed_form(name, logits, y, smoothing, targets):
  logits, targets = np.asarray(logits, np.float64), np.asarray(targets)
  if name == "softmax_cross_entropy":
    log_p = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    expected = -np.sum(targets * log_p, axis=-1)
  else:
    p = 1.0 / (1.0 + np.exp(-logits[:, 0]))
    expected = -(targets * np.log(p) + (1.0 - targets) * np.log(1.0 - p))
  loss = losses.smoothed_loss_on_logits(name, smoothing)
  np.testing.assert_allclose(loss(np.float32(logits), np.asarray(y)), expected, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(losses.LOGIT_LOSSES))
def test_no_smoothing_is_the_plain_loss_and_bad_smoothing_fails(name):
  assert losses.smoothed_loss_on_logits(name, 0.0) is losses.loss_on_logits(name)[0]
  for bad in (-0.1, 1.0):
    with pytest.raises(ValueError, match="label_smoothing must be in"):
      losses.smoothed_loss_on_logits(name, bad)


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**16), smoothing=st.floats(0.0, 0.99),
                  name=st.sampled_from(sorted(set(losses.LOGIT_LOSSES)
                                              - set(losses.MULTILABEL_LOSSES))))
def test_smoothed_loss_mixes_the_true_label_with_every_label(seed, smoothing, name):
  # (The multi-label loss's smoothing has its closed form in tests/test_losses.py.)
  # Cross-entropy is linear in the target: L_a(y) = (1 - a) L(y) + a mean_k L(k).
  classes = 4 if name == "softmax_cross_entropy" else 1
  logits = np.random.default_rng(seed).normal(size=(3, classes)).astype(np.float32)
  y = np.array([0, 1, 0], np.int32)
  plain = losses.loss_on_logits(name)[0]
  labels = range(max(classes, 2))
  mixed = (1 - smoothing) * plain(logits, y) + smoothing * np.mean(
      [plain(logits, np.full(3, k, np.int32)) for k in labels], axis=0)
  np.testing.assert_allclose(losses.smoothed_loss_on_logits(name, smoothing)(logits, y), mixed,
                             rtol=1e-5, atol=1e-6)
