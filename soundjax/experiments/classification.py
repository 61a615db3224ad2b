"""Train one sound classifier and report it: `results.json`, a confusion matrix and a summary."""

import os
import time

import ml_collections
import numpy as np

from soundjax import data, report, training
from soundjax.metrics import classification


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) `config.model` on `config.data` and writes its report into `workdir`.

  Args:
    config: see `configs/classification.py`.
    workdir: output folder; re-running with the same folder resumes from the last checkpoint.

  Returns:
    The results written to `results.json`.
  """
  training.check_classifier(config)
  report.ensure_dir(workdir)
  start = time.perf_counter()
  builder = data.prepare_config(config.data)
  result = training.train(config, workdir, builder=builder)
  evaluation = result.evaluation
  names = builder.info.features[builder.info.supervised_keys[1]].names
  matrix = classification.confusion_matrix(evaluation["labels"], evaluation["predictions"],
                                           len(names))
  results = {
      "dataset": config.data.name,
      "model": config.model.name,
      "steps": int(result.state.step),
      "test_accuracy": evaluation["accuracy"],
      "test_loss": evaluation["loss"],
      "num_test_examples": int(len(evaluation["labels"])),
      "chance_accuracy": float(np.max(np.bincount(evaluation["labels"])) /
                               len(evaluation["labels"])),
      "per_class_accuracy": dict(zip(names, classification.per_class_accuracy(matrix))),
      "wall_seconds": time.perf_counter() - start,
  }
  _write(workdir, results, matrix, names)
  return results


@report.on_process_zero
def _write(workdir: str, results: dict, matrix: np.ndarray, names) -> None:
  report.write_json(os.path.join(workdir, "results.json"), results)
  report.plot_confusion_matrix(matrix, names, os.path.join(workdir, "confusion_matrix.png"),
                               title=f"{results['model']} on {results['dataset']}")
  rows = [(name, float(value)) for name, value in results["per_class_accuracy"].items()]
  summary = (
      f"# {results['model']} on {results['dataset']}\n\n"
      f"Test accuracy **{results['test_accuracy']:.3f}** on {results['num_test_examples']} clips "
      f"(chance {results['chance_accuracy']:.3f}), test loss {results['test_loss']:.3f}, "
      f"after {results['steps']} steps ({results['wall_seconds']:.0f} s this run).\n\n"
      "![confusion matrix](confusion_matrix.png)\n\n"
      + report.markdown_table(["class", "accuracy"], rows) + "\n")
  with open(os.path.join(workdir, "summary.md"), "w") as file:
    file.write(summary)
