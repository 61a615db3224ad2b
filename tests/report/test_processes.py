"""Only JAX process 0 writes an experiment's files; every process gets the results."""

import importlib
import os

import pytest

from configs import quickstart
from soundjax import report
from soundjax.experiments import quickstart as quickstart_experiment
from soundjax.report import processes

# Every function of the experiments that writes report files (the training loop's metric writer
# and orbax's checkpoints have their own multi-process rules).
WRITERS = [("soundjax.experiments.classification", "_write"),
           ("soundjax.experiments.quickstart", "_write"),
           ("soundjax.experiments.adversarial.report", "write"),
           ("soundjax.experiments.occlusion.report", "write"),
           ("soundjax.experiments.sed.report", "write"),
           ("soundjax.experiments.vocal_percussion.report", "write"),
           ("soundjax.experiments.vocal_percussion", "_write_embeddings")]


def test_a_decorated_writer_runs_on_process_zero_only(monkeypatch, tmp_path):
  @report.on_process_zero
  def write(path):
    with open(path, "w") as file:
      file.write("x")
    return "written"

  assert write(str(tmp_path / "zero")) == "written"
  monkeypatch.setattr(processes, "process_index", lambda: 1)
  assert write(str(tmp_path / "one")) is None
  assert sorted(os.listdir(tmp_path)) == ["zero"]


@pytest.mark.parametrize("module, name", WRITERS)
def test_every_experiment_writer_is_process_zero_only(module, name):
  assert getattr(getattr(importlib.import_module(module), name), "process_zero_only", False)


def test_a_second_process_runs_the_quickstart_but_writes_no_report(
    monkeypatch, tiny_data_dir, tiny_synth_settings, tmp_path):
  config = quickstart.get_config()
  config.stages = ("classification",)
  stage = config.classification
  stage.data.data_dir = tiny_data_dir
  stage.data.settings.update(tiny_synth_settings)
  stage.frontend.update(dict(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16))
  stage.model.kwargs = {"channels": (4,)}
  stage.train.update(dict(num_steps=2, batch_size=8, eval_batch_size=24))
  monkeypatch.setattr(processes, "process_index", lambda: 1)
  results = quickstart_experiment.run(config, str(tmp_path))
  assert results["classification"]["steps"] == 2
  written = {os.path.relpath(os.path.join(folder, name), tmp_path)
             for folder, _, names in os.walk(tmp_path) for name in names}
  # Training's own files stay (its metric writer asks JAX, which says process 0 here).
  kept = ("classification/checkpoints/", "classification/tensorboard/")
  assert {name for name in written if not name.startswith(kept)} == {
      "classification/metrics.jsonl"}, sorted(written)
