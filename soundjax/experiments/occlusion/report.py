"""Aggregation over models, `results.json`, the Markdown tables and the figures of the occlusion
experiment (`soundjax.experiments.occlusion`)."""

import os
from typing import Any, Dict, List

import jax
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,g-bad-import-order
import numpy as np

from soundjax import attribution, report  # report selects the headless backend first.

# Labels of the config's method names (the paper's names in brackets); no '|', it splits tables.
LABELS = {"abs_gradient": "abs grad (abs_grad)", "gradient": "grad (grad_orig)",
          "grad_x_input": "grad x input (grad_inp)", "integrated_gradients": "IG",
          "smoothgrad": "SmoothGrad", "random": "random"}
PRIMARY = {"accuracy": "accuracy", "detection": "f1"}  # task metric -> the metric tabulated
SIGNED = ("gradient", "grad_x_input", "integrated_gradients", "smoothgrad")


def _spread(per_model: List[Dict]) -> Dict[str, Any]:
  """Mean and sample standard deviation (0 for one model) of every leaf over models."""
  stacked = jax.tree.map(lambda *v: np.stack([np.asarray(x, np.float64) for x in v]), *per_model)
  ddof = 1 if len(per_model) > 1 else 0
  return {"mean": jax.tree.map(lambda v: v.mean(0), stacked),
          "std": jax.tree.map(lambda v: v.std(0, ddof=ddof), stacked)}


def task_results(config, prepared, per_model: List[Dict], seconds: Dict) -> Dict[str, Any]:
  """The JSON-able results of one task: settings, per-model and aggregated figures, and which
  cells have an occluded metric above the original one (means over models)."""
  metric = PRIMARY[config.metric]
  figures = [{"original": r["original"], "methods": r["methods"]} for r in per_model]
  spread = _spread(figures)
  original = spread["mean"]["original"][metric]
  beats, models_beating = {}, {}
  for method, values in spread["mean"]["methods"].items():
    beats[method] = values["sweep"][metric] > original
    models_beating[method] = np.sum([r["methods"][method]["sweep"][metric] > r["original"][metric]
                                     for r in per_model], axis=0)
  settings = config.attribution
  return {
      "dataset": config.data.name, "data_settings": config.data.settings.to_dict(),
      "model": config.model.name, "loss": config.loss, "metric": metric,
      "domain": "sound" if is_spectrogram(config) else "image",
      "occluded": "log-mel spectrogram (the model input)" if is_spectrogram(config)
                  else "image (the model input)",
      "num_examples": int(len(prepared.test.y)), "num_models": len(per_model),
      "statistics": prepared.statistics,
      "axes": {"methods": list(settings.methods), "directions": list(settings.directions),
               "replacements": list(settings.replacements), "fractions": list(settings.fractions),
               "curves": list(attribution.CURVES),
               "curve_fractions": list(settings.curve_fractions),
               "curve_replacement": settings.curve_replacement},
      "models": [{k: r[k] for k in ("seed", "test_accuracy", "threshold")} for r in per_model],
      "mean": spread["mean"], "std": spread["std"], "per_model": figures,
      "beats_original": beats, "models_beating": models_beating,
      "num_cells_beating": int(sum(np.sum(b) for b in beats.values())),
      "num_cells": int(sum(np.size(b) for b in beats.values())),
      "seconds": seconds,
  }


def figure_path(task: str, kind: str) -> str:
  """A task's figure in the workdir: `kind` is "sweep", "curves" or "maps"."""
  return f"figures/{task}_{kind}.png"


def is_spectrogram(config) -> bool:
  """Whether the task's model input is a spectrogram (sound) rather than an image."""
  return bool(config.get("frontend")) or config.metric == "detection"


def _cell(mean: float, std: float, fell: float, beats: bool) -> str:
  text = f"{mean:.3f} ± {std:.3f} ({100 * fell:.0f}%)"
  return f"**{text} ▲**" if beats else text


def markdown(name: str, results: Dict[str, Any]) -> str:
  """One task's section: the sweep table (occluded-wins cells bold with ▲) and curve areas."""
  axes, mean, std, metric = results["axes"], results["mean"], results["std"], results["metric"]
  rows = []
  for method in axes["methods"]:
    sweep, sweep_std = mean["methods"][method]["sweep"], std["methods"][method]["sweep"]
    for d, direction in enumerate(axes["directions"]):
      for r, replacement in enumerate(axes["replacements"]):
        rows.append([LABELS[method], replacement, direction] + [
            _cell(sweep[metric][d, r, f], sweep_std[metric][d, r, f], sweep["loss_fell"][d, r, f],
                  bool(results["beats_original"][method][d, r, f]))
            for f in range(len(axes["fractions"]))])
  headers = ["method", "replacement", "occludes"] + [f"{100 * f:g}%" for f in axes["fractions"]]
  areas = [[LABELS[m]] + [f"{mean['methods'][m]['areas'][metric][c]:.3f} ± "
                          f"{std['methods'][m]['areas'][metric][c]:.3f}"
                          for c in range(len(axes["curves"]))] for m in axes["methods"]]
  original = f"{mean['original'][metric]:.3f} ± {std['original'][metric]:.3f}"
  return (
      f"## {name}: {results['model']} on {results['dataset']}\n\n"
      f"Test {metric} of the unoccluded inputs **{original}** ({results['num_models']} models, "
      f"{results['num_examples']} examples; occluded domain: {results['occluded']}). Cells: "
      f"{metric} of the occluded inputs, mean ± std over models (share of examples whose loss "
      f"fell); **bold ▲** where it beats the original: {results['num_cells_beating']} of "
      f"{results['num_cells']} cells. \"positive\" occludes the highest attributions first.\n\n"
      + report.markdown_table(headers, rows) + "\n\n"
      f"Areas under the {metric} curves (fraction 0 to 1, filled with "
      f"{axes['curve_replacement']}):\n\n"
      + report.markdown_table(["method"] + axes["curves"], areas) + "\n\n"
      + "".join(f"![{kind}]({figure_path(name, kind)})\n"
                for kind in ("sweep", "curves", "maps")))


def plot_task(name: str, results: Dict[str, Any], inputs: np.ndarray, maps: Dict[str, np.ndarray],
              spectrogram: bool, folder: str) -> None:
  """Saves `<name>_sweep.png`, `<name>_curves.png` and `<name>_maps.png` into `folder`."""
  axes_info, mean, std, metric = results["axes"], results["mean"], results["std"], results["metric"]
  directions, replacements = axes_info["directions"], axes_info["replacements"]
  figure, grid = plt.subplots(len(directions), len(replacements), squeeze=False, sharey=True,
                              figsize=(3.2 * len(replacements), 2.8 * len(directions)))
  fractions = np.asarray(axes_info["fractions"])
  for d, direction in enumerate(directions):
    for r, replacement in enumerate(replacements):
      _plot_cell(grid[d, r], axes_info["methods"], mean, std, metric, fractions, d, r)
      grid[d, r].set_title(f"{replacement}, occlude {direction}", fontsize=9)
  grid[0, 0].set_ylabel(metric)
  grid[0, -1].legend(fontsize=7)
  _save(figure, os.path.join(folder, os.path.basename(figure_path(name, "sweep"))),
        f"{name}: {metric} when occluding")

  figure, grid = plt.subplots(1, len(axes_info["curves"]), squeeze=False, sharey=True,
                              figsize=(8, 4))
  for c, curve in enumerate(axes_info["curves"]):
    for method in axes_info["methods"]:
      values = mean["methods"][method]["curves"][metric][c]
      area = mean["methods"][method]["areas"][metric][c]
      grid[0, c].plot(axes_info["curve_fractions"], values, marker="o", markersize=3,
                      label=f"{LABELS[method]} ({area:.2f})")
    grid[0, c].set_title(curve)
    grid[0, c].set_xlabel("fraction occluded" if curve == "deletion" else "fraction revealed")
    grid[0, c].legend(fontsize=6)
  grid[0, 0].set_ylabel(metric)
  _save(figure, os.path.join(folder, os.path.basename(figure_path(name, "curves"))),
        f"{name}: deletion / insertion")
  plot_maps(inputs, maps, spectrogram,
            os.path.join(folder, os.path.basename(figure_path(name, "maps"))), name)


def _plot_cell(axes, methods, mean, std, metric, fractions, d, r) -> None:
  for method in methods:
    m = mean["methods"][method]["sweep"][metric][d, r]
    s = std["methods"][method]["sweep"][metric][d, r]
    axes.plot(fractions, m, marker="o", markersize=3, label=LABELS[method])
    axes.fill_between(fractions, m - s, m + s, alpha=0.15)
  axes.axhline(mean["original"][metric], color="black", linestyle="--", label="original")
  axes.set_xlabel("occluded fraction")


def plot_maps(inputs: np.ndarray, maps: Dict[str, np.ndarray], spectrogram: bool, path: str,
              title: str) -> None:
  """A grid of examples (rows) by input and attribution maps (columns); spectrograms are shown
  time across, frequency up; signed maps on a symmetric red-blue scale."""
  columns = ["input"] + list(maps)
  figure, grid = plt.subplots(len(inputs), len(columns), squeeze=False,
                              figsize=(2.2 * len(columns), 2.0 * len(inputs)))
  show = (lambda a: np.asarray(a).T) if spectrogram else np.asarray
  for row, x in enumerate(inputs):
    for col, column in enumerate(columns):
      image = show(x if column == "input" else maps[column][row])
      if column in SIGNED:
        limit = max(np.max(np.abs(image)), 1e-12)
        style = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
      else:
        style = {"cmap": "magma" if column == "input" else "viridis"}
      grid[row, col].imshow(image, origin="lower" if spectrogram else "upper", aspect="auto",
                            **style)
      grid[row, col].set_xticks([])
      grid[row, col].set_yticks([])
      if row == 0:
        grid[row, col].set_title(LABELS.get(column, column), fontsize=8)
  _save(figure, path, f"{title}: attribution maps (model 1)")


def _save(figure, path: str, title: str) -> None:
  figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


@report.on_process_zero
def write(results: Dict[str, Any], workdir: str, findings: str) -> None:
  """Writes `results.json` and `summary.md` (the findings block, then one section per task)
  into `workdir`."""
  report.write_json(os.path.join(workdir, "results.json"), results)
  sections = [markdown(name, task) for name, task in results["tasks"].items()]
  with open(os.path.join(workdir, "summary.md"), "w") as file:
    file.write("# Occlusion by loss-gradient attributions (Paper 1)\n\n" + findings + "\n"
               f"Wall time {results['wall_seconds']:.0f} s.\n\n" + "\n".join(sections))
