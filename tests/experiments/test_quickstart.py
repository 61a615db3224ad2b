"""The quickstart runner: each stage in its own folder, one summary and one results file."""

import json
import os

from configs import quickstart
from soundjax import report
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
    assert json.load(file)["classification"]["steps"] == 2
  assert "classification/summary.md" in (tmp_path / "summary.md").read_text()
  # The HTML page of the run (its converter is tested on its own in test_report.py).
  page = open(report.write_html_report(str(tmp_path))).read()
  assert '<img src="classification/confusion_matrix.png"' in page
  assert '<a href="#section-1">classification/summary.md</a></li>' in page
  assert "<th>class</th><th>accuracy</th>" in page
