"""What the SED experiment writes: `results.json`, `results.md` (the test scores per detector as
mean +- std over seeds, class-wise F, event F under attack), `summary.md`, event F against the
attention width, event F against SNR, piano rolls of reference against prediction, attention
maps, and the test predictions as DCASE TSV files.
"""

import math
import os
from typing import Any, Dict, List, Optional

import ml_collections
import numpy as np

from soundjax import data, report
from soundjax.experiments.sed import evaluate, setup
from soundjax.metrics import sed

# (results key, sub-key, column) of the main table; each cell is mean +- std over seeds.
COLUMNS = (
    ("event", "f_measure", "event F"),
    ("event", "error_rate", "event ER"),
    ("segment", "f_measure", "segment F"),
    ("segment", "error_rate", "segment ER"),
    ("psds1", None, "PSDS1"),
    ("psds2", None, "PSDS2"),
    ("event_sed_eval", "f_measure", "event F (sed_eval defaults)"),
)
# The figures of event F against the attention width and against the attack's SNR floor.
WIDTH_PLOT, SNR_PLOT = "event_f_vs_width.png", "event_f_vs_snr.png"


def _value(figures: Optional[dict], key: str, sub: Optional[str]) -> Optional[float]:
  value = figures[key] if sub is None else figures[key][sub]
  return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _cell(entry: Dict[str, Any], key: str, sub: Optional[str] = None) -> str:
  """Mean ± std over seeds; the mean alone from one seed (its std of 0 says nothing)."""
  mean, std = _value(entry["mean"], key, sub), _value(entry["std"], key, sub)
  if mean is None:
    return "n/a"
  return f"{mean:.3f} ± {std:.3f}" if len(entry["runs"]) > 1 else f"{mean:.3f}"


def _number(value: Optional[float]) -> str:
  return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _widths(widths: List[Optional[int]]) -> str:
  return "none" if not widths else ", ".join("all" if w is None else str(w) for w in widths)


def best_attention(results: Dict[str, Any]) -> Optional[str]:
  """The attention detector of highest mean test event F (None if none has one)."""
  scored = [(entry["mean"]["event"]["f_measure"], name)
            for name, entry in results["detectors"].items()
            if name != setup.BASELINE and entry["mean"]["event"]["f_measure"] is not None]
  return max(scored)[1] if scored else None


def scores_table(results: Dict[str, Any]) -> str:
  """The test scores of every detector (`COLUMNS`), mean ± std over seeds."""
  return report.markdown_table(
      ["detector", "widths"] + [column for _, _, column in COLUMNS],
      [[name, _widths(entry["widths"])] + [_cell(entry, key, sub) for key, sub, _ in COLUMNS]
       for name, entry in results["detectors"].items()])


def markdown(results: Dict[str, Any], findings: str = "") -> str:
  """The Markdown report: the findings block, the score tables, the figures and the prediction
  files."""
  detectors = results["detectors"]
  seeds = len(results["seeds"])
  lines = [
      f"# Sound event detection with memory-controlled self-attention ({results['dataset']})",
      "", findings,
      f"{len(detectors)} detectors x {seeds} seed(s), {results['num_test_clips']} test clips of "
      f"{results['num_frames']} frames at {results['frame_rate']:g} frames/s; "
      f"{results['wall_seconds']:.0f} s this run. Every cell is the mean ± std over seeds of the "
      "test score at the threshold chosen on validation. Event-based: onset collar of the "
      "published evaluation, offsets not evaluated (sed_eval's defaults in the last column); "
      "segment-based over 1 s segments (see `results.json` for the settings).",
      "",
      "## Test scores",
      "",
      scores_table(results),
      "",
      f"![event F against attention width]({WIDTH_PLOT})",
      "",
      "## Class-wise event F (mean over seeds)",
      "",
  ]
  classes = results["class_names"]
  lines += [report.markdown_table(
      ["detector"] + classes,
      [[name] + [_number(entry["mean"]["event"]["class_wise_f"][c]) for c in classes]
       for name, entry in detectors.items()]), ""]
  attacked = {name: entry["robustness"] for name, entry in detectors.items()
              if "robustness" in entry}
  if attacked:
    levels = [point["snr_db"] for point in next(iter(attacked.values()))["curve"]]
    count = next(iter(attacked.values()))["num_clips"]
    lines += [
        "## Event F under PGD (first seed)", "",
        f"PGD on the waveform through the front end, frame-wise BCE against the reference, "
        f"under an SNR floor; {count} test clips. Is memory-controlled attention more or less "
        "robust than the baseline?", "",
        report.markdown_table(
            ["detector", "clean"] + [f"SNR {level:g} dB" for level in levels],
            [[name, _number(entry["clean"]["event_f"])] +
             [_number(point["event_f"]) for point in entry["curve"]]
             for name, entry in attacked.items()]),
        "", f"![event F against SNR]({SNR_PLOT})", ""]
  figures = results.get("figures", {})
  if figures.get("piano_rolls"):
    lines += ["## Piano rolls (first seed)", "", f"![piano rolls]({figures['piano_rolls']})", ""]
  if figures.get("attention"):
    lines += ["## Attention maps (first test clip, first seed)", ""]
    lines += [f"![{name}]({path})" for name, path in figures["attention"].items()] + [""]
  if figures.get("predictions"):
    lines += ["## Test predictions (DCASE TSV, first seed)", ""]
    lines += [f"- [{name}]({path})" for name, path in figures["predictions"].items()] + [""]
  return "\n".join(lines)


def summary(results: Dict[str, Any]) -> str:
  """A one-screen Markdown summary (the quickstart links each stage's `summary.md`)."""
  rows = [(name, _widths(entry["widths"]), _cell(entry, "event", "f_measure"),
           _cell(entry, "segment", "f_measure"), _cell(entry, "psds1"))
          for name, entry in results["detectors"].items()]
  best = best_attention(results)
  return "\n".join([
      f"# Sound event detection ({results['dataset']}, {len(results['seeds'])} seed(s))", "",
      report.markdown_table(["detector", "widths", "event F", "segment F", "PSDS1"], rows), "",
      f"Best attention detector: {best or 'n/a'}. Every table and figure: "
      "[results.md](results.md).", ""])


def _width_plot(workdir: str, results: Dict[str, Any]) -> None:
  """Event F against width: the single-head detectors as a line, baseline and multi-head flat."""
  detectors, full = results["detectors"], results["num_frames"]
  singles = sorted((full if entry["widths"][0] is None else entry["widths"][0],
                    entry["mean"]["event"]["f_measure"])
                   for name, entry in detectors.items()
                   if name not in (setup.BASELINE, setup.MULTI_HEAD))
  xs = [x for x, _ in singles]
  curves = {"single head": (xs, [np.nan if f is None else f for _, f in singles])}
  for name in (setup.BASELINE, setup.MULTI_HEAD):
    if name in detectors and xs:
      f = detectors[name]["mean"]["event"]["f_measure"]
      curves[name] = ([xs[0], xs[-1]], [np.nan if f is None else f] * 2)
  report.plot_curves(curves, os.path.join(workdir, WIDTH_PLOT),
                     title="Test event F against attention width (mean over seeds)",
                     xlabel=f"width in frames ({full} = every frame)", ylabel="event F",
                     log_x=True)


def _attention_maps(workdir: str, name: str, result, x: np.ndarray) -> Optional[str]:
  """Frame x frame weights of each head on one clip; None for the baseline."""
  features = result.task.features(x[None])
  _, state = result.task.model.apply(result.state.variables, features, train=False,
                                     mutable=["intermediates"])
  sown = state.get("intermediates", {})
  if "attention" not in sown:
    return None
  weights = np.asarray(sown["attention"]["weights"][0][0])  # [heads, T, T]
  widths = result.task.model.attention["widths"]
  path = f"attention_{name}.png"
  report.plot_spectrograms(
      [[w for w in weights]], os.path.join(workdir, path), row_titles=[name],
      column_titles=[f"width {'all' if w is None else w}" for w in widths],
      title=f"Attention weights of {name}", xlabel="frame", ylabel="attended frame",
      cmap="viridis")
  return path


@report.on_process_zero
def write(workdir: str, config: ml_collections.ConfigDict, results: Dict[str, Any], builder,
          test: evaluate.Reference, firsts: Dict[str, Dict[str, Any]], findings: str) -> None:
  """Writes every output file into `workdir` (and `results["figures"]`); `results.md` opens
  with `findings` (Markdown)."""
  labels, frames = results["class_names"], results["num_frames"]
  hop = 1.0 / results["frame_rate"]
  figures: Dict[str, Any] = {"predictions": {}, "attention": {}}
  predictions = report.ensure_dir(os.path.join(workdir, "predictions"))
  for name, first in firsts.items():
    figures["predictions"][name] = os.path.join("predictions", evaluate.write_predictions(
        os.path.join(predictions, f"{name}.tsv"), first["estimated"], test))
  count = min(config.num_examples, len(test.filenames))
  if count:
    first_clip = data.arrays(builder, "test", limit=1, num_samples=config.data.get("num_samples"),
                             frame_targets=config.data.frame_targets.to_dict())["x"][0]
    shown = [setup.BASELINE] + [n for n in [best_attention(results)] if n is not None]
    roll = lambda events: sed.events_to_roll(events, num_frames=frames, hop_seconds=hop,
                                             labels=labels)
    images = [[roll(test.events[f])] + [roll(firsts[n]["estimated"][f]) for n in shown]
              for f in test.filenames[:count]]
    report.plot_spectrograms(images, os.path.join(workdir, "piano_rolls.png"),
                             row_titles=test.filenames[:count],
                             column_titles=["reference"] + shown,
                             title="Reference and predicted events", ylabel="class",
                             cmap="Greys")
    figures["piano_rolls"] = "piano_rolls.png"
    for name, first in firsts.items():
      path = _attention_maps(workdir, name, first["result"], first_clip)
      if path is not None:
        figures["attention"][name] = path
  results["figures"] = figures
  _width_plot(workdir, results)
  attacked = {name: entry["robustness"] for name, entry in results["detectors"].items()
              if "robustness" in entry}
  if attacked:
    report.plot_curves({name: ([p["snr_db"] for p in entry["curve"]],
                               [p["event_f"] for p in entry["curve"]])
                        for name, entry in attacked.items()},
                       os.path.join(workdir, SNR_PLOT),
                       title="Test event F under PGD", xlabel="SNR floor (dB)",
                       ylabel="event F", invert_x=True)
  report.write_json(os.path.join(workdir, "results.json"), results)
  for name, text in (("results.md", markdown(results, findings)),
                     ("summary.md", summary(results))):
    with open(os.path.join(workdir, name), "w") as file:
      file.write(text)
