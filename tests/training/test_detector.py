"""Training a frame-wise detector: frame targets of events, the multi-label loss, selection by a
scorer's figure, and the config checks that pair detectors with their loss and targets."""

import jax
import numpy as np
import pytest

from configs import common
from soundjax import checks, data, training
from soundjax.training import loop as train
from tests.toys import TINY_FRAME_TARGETS, TINY_SED_FRONTEND, TINY_SOUNDSCAPES


def detector_config(data_dir, **train_overrides):
  config = common.base_config()
  config.data = common.data_config("synth_soundscapes", **TINY_SOUNDSCAPES)
  config.data.data_dir = data_dir
  config.data.frame_targets = dict(TINY_FRAME_TARGETS)
  config.frontend = common.frontend_config(**TINY_SED_FRONTEND)
  config.model.name = "crnn_sed"
  config.model.kwargs = {"channels": (4, 4), "pools": (2, 2), "hidden": 4,
                         "attention": {"widths": (5,), "units": 4}}
  config.loss = "multilabel_sigmoid_cross_entropy"
  config.train = common.train_config(batch_size=4, num_steps=6, log_every=2, eval_every=2,
                                     checkpoint_every=2, eval_batch_size=4)
  config.train.update(train_overrides)
  return config


def test_selection_follows_the_scorer_and_logs_its_figures(tiny_soundscapes_dir, tmp_path):
  scores, seen = iter([0.1, 0.7, 0.3]), []

  def scorer(evaluation):
    seen.append(evaluation["logits"].shape)
    return {"event_f": next(scores), "event_error_rate": 0.5}

  config = detector_config(tiny_soundscapes_dir, select_on="validate", select_metric="event_f")
  # A task passed in is trained as given (here the one the config names, built beforehand).
  task = train.build_task(config, 12)
  result = training.train(config, str(tmp_path), scorer=scorer, task=task)
  assert result.task is task
  assert int(result.state.step) == 4  # the scorer's best, not the last step or the best loss
  assert seen == [(4, 51, 12)] * 3  # validate: 4 clips, 51 frames, 12 classes
  rows = [r for r in training.read_metrics(str(tmp_path)) if r["split"] == "validate"]
  assert [r["event_f"] for r in rows] == [0.1, 0.7, 0.3]
  assert result.evaluation["logits"].shape == (4, 51, 12)
  assert set(np.unique(result.evaluation["labels"])) <= {0.0, 1.0}


def test_train_step_of_a_detector_compiles_once_and_lowers_the_loss(tiny_soundscapes_dir):
  config = detector_config(tiny_soundscapes_dir, learning_rate=1e-2)
  builder = data.prepare_config(config.data)
  task = train.build_task(config, data.num_classes(builder))
  stream = data.batches(builder, "train", batch_size=4, shuffle=True, num_epochs=None,
                        drop_remainder=True, frame_targets=TINY_FRAME_TARGETS)
  state = train.create_state(task, train.make_optimizer(config.train), stream[0]["x"],
                             jax.random.key(0))
  step = train.make_train_step(task)
  losses = []
  for index in range(20):
    state, scalars = step(state, stream[index]["x"], stream[index]["y"], jax.random.key(1))
    losses.append(float(scalars["loss"]))
  assert step._cache_size() == 1
  assert np.mean(losses[-4:]) < 0.85 * np.mean(losses[:4])
  predict = train.make_predict(task)
  for split in ("validate", "test"):
    evaluation = train.evaluate(task, state.variables, data.batches(
        builder, split, batch_size=3, frame_targets=TINY_FRAME_TARGETS), predict)
    assert evaluation["logits"].shape == (4, 51, 12)  # 4 = 3 + a padded batch of 1
  assert predict._cache_size() == 1


@pytest.mark.parametrize("change, field", [
    (lambda c: c.update(loss="softmax_cross_entropy"), "loss"),
    (lambda c: c.model.update(name="vgg", kwargs={}), "loss"),
    (lambda c: delattr(c.data, "frame_targets"), "data.frame_targets"),
    (lambda c: c.data.frame_targets.update(frame_rate=0.0), "data.frame_targets.frame_rate"),
])
def test_detectors_need_the_multilabel_loss_and_frame_targets(tiny_soundscapes_dir, change, field,
                                                              tmp_path):
  config = detector_config(tiny_soundscapes_dir)
  change(config)
  with pytest.raises(checks.ConfigError, match=f"config.{field}"):
    training.train(config, str(tmp_path))


def test_selecting_on_a_scorer_figure_needs_a_scorer(tiny_soundscapes_dir, tmp_path):
  config = detector_config(tiny_soundscapes_dir, select_on="validate", select_metric="event_f")
  with pytest.raises(checks.ConfigError, match="only a scorer"):
    training.train(config, str(tmp_path))
