"""Paper 1's evaluation: occlude inputs by attribution, and see when the occluded input wins.

For every task of `config.tasks`, `config.num_models` models are trained (`workdir/<task>/
model_<i>`, seed `config.seed + i`, resumable). For each model and attribution method, ONE jitted,
vmapped computation per chunk of test examples computes the attribution once and evaluates every
cell (direction x replacement x fraction) of `attribution.occlusion_sweep` plus the deletion and
insertion curves. Metrics per cell are then computed on the host from the recorded logits:
accuracy, or for singing-voice detection F1/AUROC/... after a median filter and a threshold tuned
on the validation songs' unoccluded predictions. Figures are aggregated over models as mean and
standard deviation (ddof 1). What is occluded is the model input (log-mel spectrogram or image);
the front end runs once, before attribution.
"""

import time
from typing import Dict

import ml_collections

from soundjax.experiments import results_page
from soundjax.experiments.occlusion import checks, page, report
from soundjax.experiments.occlusion.evaluate import run_task


def run(config: ml_collections.ConfigDict, workdir: str) -> Dict:
  """Runs every task of `config.tasks` and writes `results.json`, `summary.md` and figures.

  Args:
    config: see `configs/occlusion.py`.
    workdir: output folder; models train in `<workdir>/<task>/model_<i>` and resume there.

  Returns:
    The results written to `results.json`.
  """
  checks.check_config(config)
  start = time.perf_counter()
  tasks = {}
  for name, task in config.tasks.items():
    task_config = ml_collections.ConfigDict(task.to_dict())
    task_config.update(seed=config.seed, num_models=config.num_models,
                       attribution=config.attribution.to_dict())
    tasks[name] = run_task(name, task_config, workdir)
  results = {"tasks": tasks, "wall_seconds": time.perf_counter() - start}
  report.write(results, workdir, results_page.findings_block(page, results))
  return results
