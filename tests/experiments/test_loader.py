"""`experiments.load_config`: the command line's config from Python, from any directory."""

import os
import subprocess
import sys

import pytest

from configs import classification, occlusion
from soundjax import experiments
from soundjax.checks import ConfigError


def test_loads_the_variant_the_command_line_would_with_overrides():
  config = experiments.load_config("classification:quick",
                                   {"train.num_steps": 10, "model.name": "crnn"})
  expected = classification.get_config("quick")
  expected.train.num_steps, expected.model.name = 10, "crnn"
  assert config.to_dict() == expected.to_dict()
  assert experiments.load_config("configs/classification.py").to_dict() == \
      classification.get_config("").to_dict()


def test_overrides_follow_config_references_and_the_result_is_locked():
  config = experiments.load_config("occlusion:quick", {"data_dir": "/elsewhere"})
  assert {task.data.data_dir for task in config.tasks.values()} == {"/elsewhere"}
  assert occlusion.get_config("quick").tasks.sound.data.data_dir != "/elsewhere"
  with pytest.raises(AttributeError, match="locked"):
    config.attribution.ig_step = 3


@pytest.mark.parametrize("spec, overrides, match", [
    ("clasification:quick", {}, r"unknown config 'clasification' \(did you mean "
     r"'classification'\?\); known configs .*\['adversarial', 'classification', 'occlusion', "
     r"'quickstart', 'sed_attention', 'vocal_percussion'\]"),
    ("classification:quik", {}, r"unknown variant 'quik' of configs/classification\.py \(did you "
     r"mean 'quick'\?\); its variants: \['', 'quick'\]"),
    ("quickstart:quick", {}, r"unknown variant 'quick' of configs/quickstart\.py"),
    ("classification:quick", {"train.num_step": 10}, r"unknown field config\.train\.num_step of "
     r"configs/classification\.py:quick: config\.train has no field 'num_step' \(did you mean "
     r"'num_steps'\?\); its fields: \['batch_size', "),
    ("classification", {"trian.num_steps": 10}, r"unknown field config\.trian\.num_steps of "
     r"configs/classification\.py: config has no field 'trian' \(did you mean 'train'\?\)"),
    ("classification", {"train.num_steps.x": 1}, r"unknown field config\.train\.num_steps\.x "
     r"of configs/classification\.py: config\.train\.num_steps is 1500, not a group"),
    ("classification", {"train.num_steps": "ten"}, r"config\.train\.num_steps of "
     r"configs/classification\.py cannot be set to 'ten'"),
    ("", {}, r"the config must be a name such as 'classification'"),
])
def test_mistakes_raise_config_errors_naming_the_choices(spec, overrides, match):
  with pytest.raises(ConfigError, match=r"^soundjax\.experiments\.load_config: " + match):
    experiments.load_config(spec, overrides)


def test_works_from_another_working_directory(tmp_path):
  script = ("from soundjax.experiments import load_config\n"
            "config = load_config('classification:quick', {'train.num_steps': 7})\n"
            "print(config.experiment, config.train.num_steps)\n")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the install, not the repo
  result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split()[-2:] == ["classification", "7"]
