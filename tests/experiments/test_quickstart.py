"""The quickstart runner: each stage in its own folder, one summary and one results file."""

import json
import os

import numpy as np
import pytest

from configs import quickstart
from soundjax import data, report
from soundjax.experiments import quickstart as quickstart_experiment


def test_quickstart_runs_its_stages_into_subfolders(tiny_data_dir, tiny_synth_settings, tmp_path):
  config = quickstart.get_config()
  config.stages = ("classification",)
  stage = config.classification
  stage.data.data_dir = tiny_data_dir
  stage.data.settings.update(tiny_synth_settings)
  stage.frontend.update(dict(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16))
  stage.model.kwargs = {"channels": (4,)}
  stage.train.update(dict(num_steps=2, batch_size=8, eval_batch_size=24))
  results = quickstart_experiment.run(config, str(tmp_path))
  assert set(results) == {"classification"}
  assert os.path.exists(tmp_path / "classification" / "confusion_matrix.png")
  with open(tmp_path / "results.json") as file:
    classification = json.load(file)["classification"]
  assert classification["steps"] == 2
  # Invariant, not the report's formula: class recalls weighted by class size are the accuracy.
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  counts = np.bincount(data.arrays(builder, "test")["y"], minlength=data.num_classes(builder))
  assert classification["num_test_examples"] == counts.sum() == tiny_synth_settings["num_test"]
  recalls = np.array([np.nan if v is None else v
                      for v in classification["per_class_accuracy"].values()], np.float64)
  assert np.all(np.isnan(recalls) == (counts == 0))
  assert np.nansum(recalls * counts) / counts.sum() == pytest.approx(
      classification["test_accuracy"])
  assert "classification/summary.md" in (tmp_path / "summary.md").read_text()
  # The HTML page of the run (its converter is tested on its own in test_report.py).
  page = open(report.write_html_report(str(tmp_path))).read()
  assert '<img src="classification/confusion_matrix.png"' in page
  assert '<a href="#section-1">classification/summary.md</a></li>' in page
  assert "<th>class</th><th>accuracy</th>" in page
