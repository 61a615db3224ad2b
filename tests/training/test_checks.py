"""`training.train` called from Python checks its config as the command line does, first."""

import os

import pytest

from soundjax import checks, training
from soundjax.experiments import load_config


@pytest.mark.parametrize("field, value, message", [
    ("train.learning_rate", -1.0, "config.train.learning_rate must be positive, got -1.0."),
    ("train.num_steps", 0, "config.train.num_steps must be positive, got 0."),
    ("train.optimizer", "adamw_typo", "config.train.optimizer is 'adamw_typo', which is not"),
    ("model.name", "vgx", "config.model.name is 'vgx'; known models"),
    ("loss", "cross_entropy", "config.loss is 'cross_entropy'; known losses"),
    ("frontend.n_fft", 0, "config.frontend: n_fft must be an integer >= 1, got 0"),
])
def test_train_refuses_a_bad_value_before_touching_data_or_workdir(tmp_path, field, value,
                                                                    message):
  config = load_config("classification:quick", {field: value})
  # A builder that would fail if used: the checks must come before anything reads data.
  with pytest.raises(checks.ConfigError) as error:
    training.train(config, str(tmp_path / "run"), builder=object())
  assert str(error.value).startswith(message)
  assert not os.path.exists(tmp_path / "run")
