"""The quickstart: several experiments' `:quick` variants in one workdir, with one summary.

Each stage named in `config.stages` is run as `soundjax.experiments.<stage>.run(config.<stage>,
workdir/<stage>)`; the top-level `results.json` gathers their results and `summary.md` links
their own summaries.
"""

import importlib
import os
import time

import ml_collections

from soundjax import checks, report


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs every stage in order and writes `results.json` and `summary.md` into `workdir`."""
  checks.require(len(config.stages) > 0, "stages", "must name at least one experiment.")
  for stage in config.stages:
    checks.require(stage in config, "stages", f"names {stage!r}, which has no sub-config.")
  report.ensure_dir(workdir)
  results, lines = {}, ["# soundjax quickstart", ""]
  for stage in config.stages:
    start = time.perf_counter()
    experiment = importlib.import_module(f"soundjax.experiments.{config[stage].experiment}")
    results[stage] = experiment.run(config[stage], os.path.join(workdir, stage))
    seconds = time.perf_counter() - start
    results[stage]["stage_seconds"] = seconds
    lines.append(f"- **{stage}** ({seconds:.0f} s): see [{stage}/summary.md]({stage}/summary.md)")
  _write(workdir, results, lines)
  return results


@report.on_process_zero
def _write(workdir: str, results: dict, lines) -> None:
  report.write_json(os.path.join(workdir, "results.json"), results)
  with open(os.path.join(workdir, "summary.md"), "w") as file:
    file.write("\n".join(lines) + "\n")
