"""Training: learning, logging, checkpoints, and exact resumption after resume and after SIGKILL."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import pytest

from configs import common
from soundjax import checks, data, training
from soundjax.training import loop as train
from tests.toys import REPO, TINY_SYNTH


def tiny_config(data_dir, settings, **train_overrides):
  config = common.base_config()
  config.data = common.data_config("synth_events", **settings)
  config.data.data_dir = data_dir
  config.frontend = common.frontend_config(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16)
  config.model.kwargs = {"channels": (4, 8)}
  config.train = common.train_config(batch_size=8, num_steps=12, log_every=2, eval_every=6,
                                     checkpoint_every=4, keep_checkpoints=2, eval_batch_size=16)
  config.train.update(train_overrides)
  return config


def _leaves(state):
  return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves((state.params,
                                                                   state.batch_stats))]


def test_train_logs_checkpoints_and_evaluates(tiny_data_dir, tiny_synth_settings, tmp_path):
  workdir = str(tmp_path / "run")
  result = train.train(tiny_config(tiny_data_dir, tiny_synth_settings), workdir)
  assert int(result.state.step) == 12
  rows = training.read_metrics(workdir)
  assert [r["step"] for r in rows if r["split"] == "train"] == [2, 4, 6, 8, 10, 12]
  assert [r["step"] for r in rows if r["split"] == "test"] == [6, 12]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["12", "8"]
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(os.path.join(workdir, "tensorboard")))
  assert 0.0 <= result.evaluation["accuracy"] <= 1.0
  assert len(result.evaluation["labels"]) == tiny_synth_settings["num_test"]


def test_training_lowers_the_loss(tiny_data_dir, tiny_synth_settings, tmp_path):
  config = tiny_config(tiny_data_dir, tiny_synth_settings, num_steps=30, learning_rate=3e-3)
  train.train(config, str(tmp_path))
  losses = [r["loss"] for r in training.read_metrics(str(tmp_path)) if r["split"] == "train"]
  assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_resume_continues_exactly(tiny_data_dir, tiny_synth_settings, tmp_path):
  whole = train.train(tiny_config(tiny_data_dir, tiny_synth_settings), str(tmp_path / "whole"))
  parts = str(tmp_path / "parts")
  train.train(tiny_config(tiny_data_dir, tiny_synth_settings, num_steps=8), parts)
  resumed = train.train(tiny_config(tiny_data_dir, tiny_synth_settings), parts)
  for a, b in zip(_leaves(whole.state), _leaves(resumed.state)):
    np.testing.assert_array_equal(a, b)
  assert resumed.evaluation["accuracy"] == whole.evaluation["accuracy"]


def _cli(workdir, data_dir, settings, num_steps):
  args = [sys.executable, "-m", "soundjax.main", "--config=configs/classification.py",
          f"--workdir={workdir}", f"--config.data.data_dir={data_dir}",
          "--config.frontend.sample_rate=8000", "--config.frontend.n_fft=256",
          "--config.frontend.hop_length=128", "--config.frontend.n_mels=16",
          "--config.train.batch_size=8", f"--config.train.num_steps={num_steps}",
          "--config.train.checkpoint_every=3", "--config.train.log_every=1",
          "--config.train.eval_every=1000", "--config.train.eval_batch_size=16"]
  args += [f"--config.data.settings.{k}={v}" for k, v in settings.items()]
  return args


# XLA:CPU's multi-threaded Eigen kernels may sum in a load-dependent order (seen here: the first
# loss differed in the 7th digit between two processes on a busy machine). Single-threaded kernels
# make runs in separate processes bitwise comparable.
_DETERMINISTIC = {**os.environ,
                  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


def test_sigkill_then_rerun_ends_exactly_like_an_uninterrupted_run(
    tiny_data_dir, tiny_synth_settings, tmp_path):
  num_steps = 150  # Leaves the poll below ample time to kill the run mid-way.
  killed = str(tmp_path / "killed")
  process = subprocess.Popen(_cli(killed, tiny_data_dir, tiny_synth_settings, num_steps),
                             cwd=REPO, env=_DETERMINISTIC, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  checkpoints = os.path.join(killed, "checkpoints")
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    steps = [int(n) for n in os.listdir(checkpoints) if n.isdigit()] if os.path.isdir(
        checkpoints) else []
    if steps and max(steps) >= 6:
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.05)
  assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
  subprocess.run(_cli(killed, tiny_data_dir, tiny_synth_settings, num_steps), cwd=REPO,
                 env=_DETERMINISTIC, check=True, capture_output=True)

  whole = str(tmp_path / "whole")
  subprocess.run(_cli(whole, tiny_data_dir, tiny_synth_settings, num_steps), cwd=REPO,
                 env=_DETERMINISTIC, check=True, capture_output=True)
  assert training.read_metrics(killed) == training.read_metrics(whole)
  with open(os.path.join(killed, "results.json")) as a, open(
      os.path.join(whole, "results.json")) as b:
    first, second = json.load(a), json.load(b)
  assert first["test_loss"] == second["test_loss"] and first["steps"] == num_steps


def test_make_optimizer_uses_the_named_optax_optimizer():
  config = common.train_config(optimizer="sgd", optimizer_kwargs={"momentum": 0.9},
                               learning_rate=0.1, lr_decay_rate=0.5, lr_decay_steps=2)
  tx = train.make_optimizer(config)
  params = {"w": np.ones(2, np.float32)}
  state = tx.init(params)
  updates, _ = tx.update({"w": np.ones(2, np.float32)}, state, params)
  np.testing.assert_allclose(updates["w"], [-0.1, -0.1])


def test_train_step_and_predict_compile_once(tiny_data_dir, tiny_synth_settings):
  config = tiny_config(tiny_data_dir, tiny_synth_settings)
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  task = train.build_task(config, train.data.num_classes(builder))
  stream = train.data.batches(builder, "train", batch_size=8, shuffle=True, num_epochs=None,
                              drop_remainder=True)
  state = train.create_state(task, train.make_optimizer(config.train), stream[0]["x"],
                             jax.random.key(0))
  step, predict = train.make_train_step(task), train.make_predict(task)
  for index in range(3):
    state, _ = step(state, stream[index]["x"], stream[index]["y"], jax.random.key(1))
  evaluation = train.evaluate(task, state.variables,
                              train.data.batches(builder, "test", batch_size=16), predict)
  assert step._cache_size() == 1 and predict._cache_size() == 1  # 24 = 16 + 8: padded batch.
  assert len(evaluation["labels"]) == 24


class _WithValid:
  """A builder with a "valid" split that reads its "test" split (synth_events has none)."""

  def __init__(self, builder):
    self.name, self._builder = builder.name, builder
    splits = {name: builder.info.splits[name] for name in builder.info.splits}
    self.info = types.SimpleNamespace(features=builder.info.features,
                                      supervised_keys=builder.info.supervised_keys,
                                      splits={**splits, "valid": splits["test"]})

  def as_data_source(self, split):
    return self._builder.as_data_source(split={"valid": "test"}.get(split, split))


def _selecting_config(data_dir, settings):
  # Adam at 3e-3 for 6 steps, then at 0.3: the model is best at step 6 and diverges after it.
  return tiny_config(data_dir, settings, eval_every=2, select_on="valid", learning_rate=3e-3,
                     lr_decay_rate=100.0, lr_decay_steps=6)


@pytest.fixture(scope="module")
def selected_run(tiny_data_dir, tmp_path_factory):
  """An uninterrupted 12-step run that selects on "valid" (checkpoints 8 and 12 kept)."""
  settings = dict(TINY_SYNTH)
  builder = _WithValid(data.prepare("synth_events", data_dir=tiny_data_dir, **settings))
  workdir = str(tmp_path_factory.mktemp("selected") / "whole")
  config = _selecting_config(tiny_data_dir, settings)
  return config, builder, workdir, train.train(config, workdir, builder=builder)


def test_selection_returns_the_best_validated_state_not_the_last(selected_run):
  _, _, workdir, result = selected_run
  rows = training.read_metrics(workdir)
  valid = {r["step"]: r["loss"] for r in rows if r["split"] == "valid"}
  assert sorted(valid) == [2, 4, 6, 8, 10, 12]
  best = min(valid, key=valid.get)
  assert best == 6 and max(valid[8], valid[10], valid[12]) > valid[6]
  assert int(result.state.step) == best
  # "valid" reads the test split: the returned model's test loss is its logged validation loss.
  assert result.evaluation["loss"] == valid[best]
  selected = [r for r in rows if r["split"] == "selected"]
  assert selected == [{"step": 12, "split": "selected", "selected_step": 6.0,
                       "valid_loss": valid[6], "test_loss": valid[6],
                       "test_accuracy": result.evaluation["accuracy"]}]


def test_selection_survives_a_kill_and_a_rerun_after_the_end(selected_run, tmp_path):
  config, builder, whole, result = selected_run
  rows = training.read_metrics(whole)
  killed = str(tmp_path / "killed")
  shutil.copytree(whole, killed)
  # Killed after step 8's checkpoint: steps 10 and 12 are trained, evaluated and logged again,
  # and only checkpoint 8 (whose best state is step 6's) tells the new run what came before.
  shutil.rmtree(os.path.join(killed, "checkpoints", "12"))
  resumed = train.train(config, killed, builder=builder)
  assert training.read_metrics(killed) == rows
  assert int(resumed.state.step) == int(result.state.step)
  for a, b in zip(_leaves(result.state), _leaves(resumed.state)):
    np.testing.assert_array_equal(a, b)
  assert resumed.evaluation["loss"] == result.evaluation["loss"]
  again = train.train(config, killed, builder=builder)  # Ended already: restores, trains nothing.
  assert training.read_metrics(killed) == rows
  assert int(again.state.step) == 6 and again.evaluation["loss"] == result.evaluation["loss"]


def test_select_on_a_missing_split_fails_naming_the_splits(tiny_data_dir, tiny_synth_settings,
                                                         tmp_path):
  config = tiny_config(tiny_data_dir, tiny_synth_settings, select_on="valid")
  with pytest.raises(checks.ConfigError,
                     match=r"config.train.select_on is 'valid', a split synth_events lacks; "
                           r"it has \['test', 'train'\]"):
    train.train(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_evaluation_splits_under_selection_leave_the_test_set_to_the_end():
  settings = common.train_config(eval_every=2, num_steps=4)
  assert [train.evaluation_splits(s, settings) for s in (1, 2, 4)] == [[], ["test"], []]
  settings.select_on = "valid"
  assert [train.evaluation_splits(s, settings) for s in (1, 2, 4)] == [[], ["valid"], ["valid"]]
