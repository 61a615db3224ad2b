"""Configs: every shipped config is valid, and each bad value fails at start naming its field."""

import os
import subprocess
import sys

import pytest
from ml_collections.config_flags import config_path

from configs import classification, quickstart
from soundjax import config_checks
from soundjax.experiments import classification as classification_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("variant", ["", "quick"])
def test_shipped_classification_configs_are_valid(variant):
  config_checks.check_classifier(classification.get_config(variant))


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
    ("data.settings.sample_rate", -8000, "config.data.settings: synth_events: sample_rate"),
    ("frontend.n_mels", 300, "config.frontend: n_mels"),
    ("frontend.hop_length", 0, "config.frontend: hop_length"),
    ("frontend.n_fft", 0, "config.frontend: n_fft"),
    ("loss", "hinge", "config.loss is 'hinge'"),
    ("seed", -1, "config.seed must be a non-negative integer"),
])
def test_bad_values_fail_at_start_naming_the_field(tmp_path, field, value, message):
  config = classification.get_config("quick")
  config_path.set_value(field, config, value)
  with pytest.raises(config_checks.ConfigError) as error:
    classification_experiment.run(config, str(tmp_path))
  assert message in str(error.value)
  assert not os.listdir(tmp_path), "nothing may be written before the config is checked"


def test_command_line_reports_a_bad_value_without_a_traceback(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "soundjax.main", "--config=configs/classification.py:quick",
       f"--workdir={tmp_path}", "--config.train.learning_rate=-1"],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode != 0
  assert "soundjax: error: config.train.learning_rate must be positive, got -1" in result.stderr
  assert "Traceback" not in result.stderr
