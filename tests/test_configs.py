"""Configs: every shipped config is valid, and each bad value fails at start naming its field."""

import os
import subprocess
import sys

import numpy as np
import pytest
from ml_collections.config_flags import config_path

from configs import classification, occlusion, quickstart
from soundjax import checks, losses, training
from soundjax.experiments import classification as classification_experiment
from tests.toys import REPO


@pytest.mark.parametrize("variant", ["", "quick"])
def test_shipped_classification_configs_are_valid(variant):
  training.check_classifier(classification.get_config(variant))


def test_quickstart_names_only_configured_stages():
  config = quickstart.get_config()
  assert all(stage in config for stage in config.stages)


def test_unknown_variant_is_rejected():
  with pytest.raises(ValueError, match="Unknown variant 'huge'"):
    classification.get_config("huge")


@pytest.mark.parametrize("field, value, message", [
    ("train.learning_rate", -0.1, "config.train.learning_rate must be positive"),
    ("train.batch_size", 0, "config.train.batch_size must be positive"),
    ("train.optimizer", "adamm", "config.train.optimizer is 'adamm'"),
    ("model.name", "resnet9000", "config.model.name is 'resnet9000'; known models"),
    ("data.name", "audioset", "config.data.name is 'audioset'; known datasets"),
    ("data.settings.sample_rate", -8000, "config.data.settings: synth_events sample_rate"),
    ("frontend.n_mels", 300, "config.frontend: n_mels"),
    ("frontend.hop_length", 0, "config.frontend: hop_length"),
    ("frontend.n_fft", 0, "config.frontend: n_fft"),
    ("loss", "hinge", "config.loss is 'hinge'"),
    ("seed", -1, "config.seed must be a non-negative integer"),
    ("train.label_smoothing", 1.0, "config.train.label_smoothing must be in [0, 1), got 1.0"),
    ("train.label_smoothing", -0.1, "config.train.label_smoothing must be in [0, 1)"),
    ("train.select_on", "train", "config.train.select_on must name a held-out split"),
    ("train.select_metric", "f1", "config.train.select_metric is 'f1'; known metrics"),
])
def test_bad_values_fail_at_start_naming_the_field(tmp_path, field, value, message):
  config = classification.get_config("quick")
  config_path.set_value(field, config, value)
  with pytest.raises(checks.ConfigError) as error:
    classification_experiment.run(config, str(tmp_path))
  assert message in str(error.value)
  assert not os.listdir(tmp_path), "nothing may be written before the config is checked"


def test_jamendo_trains_on_the_published_targets_and_selects_each_epoch():
  train = occlusion.get_config("jamendo").tasks.singing_voice.train
  y = np.array([0, 1])
  np.testing.assert_allclose(losses.smooth_labels(y, 2, train.label_smoothing)[:, 1],
                             0.02 + 0.96 * y, rtol=1e-6)
  assert train.select_on == "valid" and train.select_metric == "accuracy"  # validation error
  assert train.eval_every == train.lr_decay_steps == 2000  # once per epoch


def test_command_line_reports_a_bad_value_without_a_traceback(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "soundjax.main", "--config=configs/classification.py:quick",
       f"--workdir={tmp_path}", "--config.train.learning_rate=-1"],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode != 0
  assert "soundjax: error: config.train.learning_rate must be positive, got -1" in result.stderr
  assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--config=configs/classification.py:huge"], "Unknown variant 'huge'"),
    (["--config=configs/classification.py:quick", "--config.train.lerning_rate=1"],
     "--config.train.lerning_rate names no config field (did you mean 'learning_rate'?)"),
    (["--config=configs/nope.py"], "nope.py"),
])
def test_command_line_reports_a_bad_config_flag_in_one_line(tmp_path, args, message):
  result = subprocess.run([sys.executable, "-m", "soundjax.main", f"--workdir={tmp_path}", *args],
                          cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode != 0
  errors = [line for line in result.stderr.splitlines() if line.startswith("soundjax: error:")]
  assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr
