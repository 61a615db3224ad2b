"""Paper 1's results page: does occluding the inputs a loss-gradient attribution ranks ever score
better than the unoccluded inputs, on sound and on images?

The paper gives no number we could read (its curves are not accessible), only the claim. A cell
of the sweep (method x replacement x direction x fraction) "beats the original" when its metric,
averaged over the models, is above the unoccluded inputs' (`report.task_results`). The verdict
asks, for each domain the run holds (sound, image), whether some cell of a loss-gradient method
(every method but the random control) beats the original on one of its tasks.
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from soundjax.experiments import results_page
from soundjax.experiments.occlusion import report
from soundjax.experiments.results_page import Claim, Finding, Part
from soundjax.report import markdown_table

TITLE = "Paper 1: occluding inputs by loss-gradient attributions"
CLAIM = Claim(
    paper="Subramanian et al., \"Anomalous behaviour in loss-gradient based interpretability "
          "methods\", arXiv 2207.07769 / RobustML workshop at ICLR 2021",
    text="occluding the input features a loss-gradient attribution ranks can give better "
         "performance than the original input across the test set under certain conditions, in "
         "sound and in image recognition (published: qualitative only, no figure accessible).")
# Methods that rank by something other than a loss gradient: controls, not part of the claim.
CONTROLS = ("random",)
DOMAINS = ("sound", "image")


def _gradient_methods(task: Dict[str, Any]) -> List[str]:
  return [m for m in task["axes"]["methods"] if m not in CONTROLS]


def _where(task: Dict[str, Any], cell: Tuple[int, int, int]) -> str:
  """A cell's replacement, direction and fraction, e.g. "mean, occluding positive 10%"."""
  axes = task["axes"]
  d, r, f = cell
  return (f"{axes['replacements'][r]}, occluding {axes['directions'][d]} "
          f"{100 * axes['fractions'][f]:g}%")


def _cell_name(task: Dict[str, Any], method: str, cell: Tuple[int, int, int]) -> str:
  return f"{report.LABELS[method]}, {_where(task, cell)}"


def best_cell(task: Dict[str, Any], methods: List[str]) -> Optional[Dict[str, Any]]:
  """The cell of highest mean metric among `methods`: its method, index, mean, std and how many
  models beat their own original there; None without methods."""
  metric, best = task["metric"], None
  for method in methods:
    sweep = np.asarray(task["mean"]["methods"][method]["sweep"][metric], np.float64)
    cell = np.unravel_index(np.nanargmax(sweep), sweep.shape)
    if best is None or sweep[cell] > best["mean"]:
      best = {"method": method, "cell": tuple(int(i) for i in cell), "mean": float(sweep[cell]),
              "std": float(np.asarray(task["std"]["methods"][method]["sweep"][metric])[cell]),
              "models": int(np.asarray(task["models_beating"][method])[cell])}
  return best


def cells_beating(task: Dict[str, Any], methods: List[str]) -> Tuple[int, int]:
  """(cells whose mean beats the original, cells) over `methods`."""
  beats = [np.asarray(task["beats_original"][m], bool) for m in methods]
  return int(sum(b.sum() for b in beats)), int(sum(b.size for b in beats))


def _original(task: Dict[str, Any]) -> float:
  return float(task["mean"]["original"][task["metric"]])


def findings(results: Dict[str, Any]) -> List[Finding]:
  """Per task: the unoccluded metric, the best loss-gradient cell, and the share of loss-gradient
  (and of control) cells that beat the original."""
  found = []
  for name, task in results["tasks"].items():
    metric, count = task["metric"], task["num_models"]
    found.append(Finding(f"{name} ({task['domain']}), {metric} of the unoccluded inputs",
                         _original(task), float(task["std"]["original"][metric]),
                         note=f"{count} models, {task['num_examples']} test examples"))
    methods = _gradient_methods(task)
    best = best_cell(task, methods)
    if best is not None:
      found.append(Finding(
          f"{name}, best occluded {metric} of a loss-gradient method", best["mean"], best["std"],
          note=f"{_cell_name(task, best['method'], best['cell'])}; {best['models']} of {count} "
               "models beat their own original there"))
    for label, group in (("loss-gradient", methods),
                         ("control", [m for m in task["axes"]["methods"] if m in CONTROLS])):
      if group:
        wins, cells = cells_beating(task, group)
        found.append(Finding(f"{name}, share of {label} cells beating the original",
                             wins / cells, note=f"{wins} of {cells} cells"))
  return found


def _part(domain: str, tasks: Dict[str, Dict[str, Any]]) -> Optional[Part]:
  """Whether some loss-gradient cell beats the original on a task of `domain` (None if the run
  has no such task or method); the clause names the cell of largest gain."""
  scored = []
  for name, task in tasks.items():
    best = best_cell(task, _gradient_methods(task)) if task["domain"] == domain else None
    if best is not None:
      scored.append((best["mean"] - _original(task), name, task, best))
  if not scored:
    return None
  gain, name, task, best = max(scored, key=lambda item: item[0])
  wins = sum(cells_beating(t, _gradient_methods(t))[0] for _, _, t, _ in scored)
  metric, where = task["metric"], _cell_name(task, best["method"], best["cell"])
  if gain > 0:
    return Part(True, f"on {domain}, {wins} loss-gradient cell(s) beat the original, the most "
                      f"on {name} ({where}: {metric} {best['mean']:.3f} against "
                      f"{_original(task):.3f} unoccluded)")
  return Part(False, f"on {domain}, no loss-gradient cell beats the original (closest: {name}, "
                     f"{where}: {metric} {best['mean']:.3f} against {_original(task):.3f})")


def verdict(results: Dict[str, Any]) -> results_page.Verdict:
  """Reproduces if, in every domain the run holds, a loss-gradient cell beats the original;
  partly if in some; does not if in none."""
  tasks = results["tasks"]
  parts = [part for part in (_part(domain, tasks) for domain in DOMAINS) if part is not None]
  domains = sorted({task["domain"] for task in tasks.values()})
  return results_page.judge(
      parts, subject=f"on {', '.join(sorted({t['dataset'] for t in tasks.values()}))} "
                     f"({' and '.join(domains)})",
      missing="" if parts else "it ran no loss-gradient method")


def tables(results: Dict[str, Any]) -> List[str]:
  """One table: per task and method, the unoccluded metric, the best occluded one and where, and
  how many cells beat the original (mean ± std over models)."""
  rows = []
  for name, task in results["tasks"].items():
    metric = task["metric"]
    original = f"{_original(task):.3f} ± {float(task['std']['original'][metric]):.3f}"
    for method in task["axes"]["methods"]:
      best = best_cell(task, [method])
      wins, cells = cells_beating(task, [method])
      rows.append([name, report.LABELS[method], original,
                   f"{best['mean']:.3f} ± {best['std']:.3f}",
                   _where(task, best["cell"]),
                   f"{wins} of {cells}"])
  return [markdown_table(["task", "method", "unoccluded", "best occluded",
                          "where (fill, occludes, fraction)", "cells beating the unoccluded"],
                         rows)]


def figures(results: Dict[str, Any]) -> List[Tuple[str, str]]:
  """Each task's sweep and deletion/insertion curves."""
  return [(report.figure_path(name, kind), f"{name}: {caption}")
          for name in results["tasks"]
          for kind, caption in (("sweep", "metric against the occluded fraction"),
                                ("curves", "deletion and insertion curves"))]
