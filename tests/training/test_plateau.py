"""Learning-rate reduction on plateaus and early stopping: Keras' rules, counted in evaluations."""

import os
import shutil

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import common
from soundjax import checks, data, training
from soundjax.training import checks as training_checks
from soundjax.training import loop as train
from soundjax.training import plateau, selection
from tests.toys import TINY_SYNTH
from tests.training.test_loop import _leaves, _selecting_config, _WithValid


def keras_scales(accuracies, *, patience, factor, min_delta):
  """Keras' ReduceLROnPlateau(monitor="val_accuracy", mode="max", cooldown=0), written out."""
  best, wait, scale, scales = -np.inf, 0, 1.0, []
  for accuracy in accuracies:
    if accuracy - min_delta > best:
      best, wait = accuracy, 0
    else:
      wait += 1
      if wait >= patience:
        scale, wait = scale * factor, 0
    scales.append(scale)
  return scales


def _state(spec):
  settings = common.train_config(reduce_on_plateau=spec, select_on="valid")
  return train.TrainState.create(apply_fn=None, params={"w": jnp.zeros(3)},
                                 tx=train.make_optimizer(settings))


def test_the_rate_is_cut_as_keras_cuts_it_on_validation_accuracy():
  accuracies = [0.5, 0.6, 0.6, 0.60005, 0.59, 0.7, 0.7, 0.7, 0.7, 0.69, 0.8, 0.8]
  spec = {"patience": 2, "factor": 0.5, "min_delta": 1e-3}
  state, scales = _state(spec), []
  for accuracy in accuracies:
    state = plateau.evaluated(state, accuracy, "accuracy", spec)
    scales.append(plateau.learning_rate_scale(state))
  expected = keras_scales(accuracies, patience=2, factor=0.5, min_delta=1e-3)
  assert expected[-1] < 0.2  # The sequence does cut the rate several times.
  np.testing.assert_allclose(scales, expected, rtol=1e-6)


def test_a_cut_rate_scales_the_optimisers_step_and_a_loss_is_minimised():
  spec = {"patience": 1, "factor": 0.1}
  state = _state(spec)
  grads = {"w": jnp.array([1.0, -2.0, 0.5])}
  full, _ = state.tx.update(grads, state.opt_state, state.params)
  for loss in (1.0, 2.0):  # Lower is better: the second evaluation does not improve.
    state = plateau.evaluated(state, loss, "loss", spec)
  assert plateau.learning_rate_scale(state) == pytest.approx(0.1)
  cut, _ = state.tx.update(grads, state.opt_state, state.params)
  np.testing.assert_allclose(cut["w"], 0.1 * np.asarray(full["w"]), rtol=1e-6)
  # Plain Adam, unwrapped: the same first step as the wrapped optimiser before any cut.
  plain, _ = optax.adam(1e-3).update(grads, optax.adam(1e-3).init(state.params), state.params)
  np.testing.assert_allclose(full["w"], plain["w"], rtol=1e-6)


def test_stopped_counts_evaluations_since_the_selected_step():
  settings = common.train_config(eval_every=2, early_stopping_patience=2)
  best = selection.Best(state=None, step=6, score=0.1)
  assert [plateau.stopped(best, step, settings) for step in (8, 9, 10, 12)] == [
      False, False, True, True]
  assert not plateau.stopped(selection.Best(state=None), 10, settings)
  settings.early_stopping_patience = None
  assert not plateau.stopped(best, 100, settings)


@pytest.fixture(scope="module")
def stopped_run(tiny_data_dir, tmp_path_factory):
  """The diverging selection run of test_loop (best at step 6 of 12), stopping after 2 stale
  evaluations and cutting the rate after 1."""
  builder = _WithValid(data.prepare("synth_events", data_dir=tiny_data_dir, **TINY_SYNTH))
  config = _selecting_config(tiny_data_dir, dict(TINY_SYNTH))
  config.train.update(early_stopping_patience=2, reduce_on_plateau={"patience": 1})
  workdir = str(tmp_path_factory.mktemp("stopped") / "whole")
  return config, builder, workdir, train.train(config, workdir, builder=builder)


def test_training_stops_early_and_a_rerun_trains_nothing(stopped_run):
  config, builder, workdir, result = stopped_run
  rows = training.read_metrics(workdir)
  valid = [r["step"] for r in rows if r["split"] == "valid"]
  assert valid == [2, 4, 6, 8, 10]  # Best at 6; 8 and 10 do not improve: stopped at 10.
  assert int(result.state.step) == 6
  assert max(int(step) for step in os.listdir(os.path.join(workdir, "checkpoints"))) == 10
  # The rate is cut once per stale evaluation (patience 1): after step 8's and step 10's.
  scales = {r["step"]: r["lr_scale"] for r in rows if r["split"] == "train"}
  assert scales[2] == scales[8] == 1.0 and scales[10] == pytest.approx(0.1)
  again = train.train(config, workdir, builder=builder)
  assert training.read_metrics(workdir) == rows
  for a, b in zip(_leaves(result.state), _leaves(again.state)):
    np.testing.assert_array_equal(a, b)


def test_a_stopped_run_killed_before_its_end_resumes_to_the_same_end(stopped_run, tmp_path):
  config, builder, whole, result = stopped_run
  killed = str(tmp_path / "killed")
  shutil.copytree(whole, killed)
  # Killed after step 8's checkpoint (its optimiser state holds the first cut).
  shutil.rmtree(os.path.join(killed, "checkpoints", "10"))
  resumed = train.train(config, killed, builder=builder)
  assert training.read_metrics(killed) == training.read_metrics(whole)
  for a, b in zip(_leaves(result.state), _leaves(resumed.state)):
    np.testing.assert_array_equal(a, b)
  assert int(resumed.state.step) == 6


@pytest.mark.parametrize("update, field", [
    ({"early_stopping_patience": 2, "select_on": None}, "train.early_stopping_patience"),
    ({"reduce_on_plateau": {"patience": 2}, "select_on": None}, "train.reduce_on_plateau"),
    ({"early_stopping_patience": 0}, "train.early_stopping_patience"),
    ({"reduce_on_plateau": {"patience": 0}}, "train.reduce_on_plateau.patience"),
    ({"reduce_on_plateau": {"patience": 2, "factor": 1.5}}, "train.reduce_on_plateau.factor"),
    ({"reduce_on_plateau": {"patience": 2, "min_delta": 0.0}},
     "train.reduce_on_plateau.min_delta"),
    ({"reduce_on_plateau": {"patience": 2, "cooldown": 3}}, "train.reduce_on_plateau"),
])
def test_bad_plateau_settings_fail_naming_the_field(update, field):
  settings = common.train_config(select_on="valid")
  settings.update(update)
  with pytest.raises(checks.ConfigError, match=f"config.{field} "):
    training_checks.check_train(settings)
