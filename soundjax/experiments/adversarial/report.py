"""What the adversarial experiment writes: `results.json`, `results.md` (tables laid out like the
paper's), the transfer heat map, robustness curves, log-mel spectrograms and WAV files.
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import ml_collections
import numpy as np
import soundfile

from soundjax import frontend, report

# results.json key -> Markdown column of the per model x attack table.
ATTACK_COLUMNS = (
    ("success_rate", "success"),
    ("success_rate_clean_correct", "success (clean correct)"),
    ("confident_success_rate", "success (paper threshold)"),
    ("snr_db_mean", "SNR dB"),
    ("snr_db_median", "SNR dB median"),
    ("linf_mean", "Linf"),
    ("l2_mean", "L2"),
    ("p_true_before", "conf. before"),
    ("p_true_after", "conf. after"),
    ("p_adv_class_after", "conf. adv. class"),
    ("p_target_after", "conf. target"),
)
# The figures of accuracy against the curve's budget and of the transfer matrix.
ROBUSTNESS_PLOT, TRANSFER_PLOT = "robustness.png", "transfer_matrix.png"


def _cell(value: Optional[float]) -> Any:
  return "n/a" if value is None else float(value)


# `attacks.robust_accuracy` key -> Markdown column: the gradient-masking diagnostics.
MASKING_COLUMNS = (
    ("grad_zero_share", "zero gradient"),
    ("grad_nonfinite_share", "non-finite gradient"),
    ("loss_gain", "APGD-CE loss gain"),
    ("no_gain_share", "no loss gain"),
    ("square_only", "broken by Square only"),
)


def _auto_attack_table(curve: Dict[str, Any]) -> list:
  """The ensemble's robust accuracy per model and level, next to the curve attack's accuracy,
  with the accuracy after each component and the masking diagnostics."""
  ensemble, param = curve["auto_attack"], curve["param"]
  components = ensemble["components"]
  header = (["model", param, f"{curve['attack']} accuracy", "AutoAttack robust accuracy"]
            + [f"after {name}" for name in components] + [c for _, c in MASKING_COLUMNS])
  rows = [[model, f"{value:g}", _cell(curve["accuracy"][model][i]), _cell(figures["robust"])]
          + [_cell(figures[name]) for name in components]
          + [_cell(figures.get(key)) for key, _ in MASKING_COLUMNS]
          for model, per_level in ensemble["figures"].items()
          for i, (value, figures) in enumerate(zip(curve["levels"], per_level))]
  return [f"### AutoAttack ({ensemble['norm']}: {', '.join(components)}) and gradient masking",
          "",
          "Robust accuracy on all attacked clips. Signs of masked gradients: input gradients "
          "that are zero or non-finite, an APGD-CE loss that never rises, and clips that only "
          "the gradient-free Square breaks.", "",
          report.markdown_table(header, rows)]


def _step_line(curve: Dict[str, Any]) -> str:
  """How the curve attack steps (`results.json`'s `robustness.step`), in words."""
  step, kwargs = curve["step"], curve.get("kwargs") or {}
  if "factor" in step:
    how = (f"each of its {step['num_steps']} steps is {step['factor']:g} x the budget's radius "
           f"/ {step['num_steps']} (step rule \"madry\")")
    if curve["param"] == "snr_db":
      how += ", the radius of an SNR being RMS(clip) x 10^(-SNR / 20) per sample"
  elif "step_size" in step:
    how = (f"{step['num_steps']} steps of a fixed {step['step_size']:g} (step rule \"fixed\")")
  else:
    how = "its step is set by the attack itself"
  overrides = ", ".join(f"{k}={v}" for k, v in kwargs.items())
  return (f"Accuracy on all attacked clips; {curve['attack']}: {how}"
          + (f"; curve overrides: {overrides}" if overrides else "") + ".")


def _curve_rows(curve: Dict[str, Any], model: str) -> list:
  """`(attack label, accuracies)` of `model`: the curve attack's, then the sanity checks'."""
  rows = [(curve["attack"], curve["accuracy"][model])]
  if "one_step" in curve:
    rows.append((f"{curve['one_step']['attack']} (one step)", curve["one_step"]["accuracy"][model]))
  if "double_steps" in curve:
    rows.append((f"{curve['attack']} ({curve['double_steps']['num_steps']} steps)",
                 curve["double_steps"]["accuracy"][model]))
  return rows


def robustness_lines(curve: Dict[str, Any]) -> Tuple[Dict[str, Tuple[list, list]],
                                                     Dict[str, Dict[str, str]]]:
  """The lines of the robustness plot and their styles: every row of `_curve_rows` of every
  model, one colour per model, solid for the curve attack, dotted for the one-step attack and
  dashed for twice the steps (the sanity checks' curves, drawn so that a failed check shows)."""
  lines, styles = {}, {}
  for index, model in enumerate(curve["accuracy"]):
    for row, (label, accuracy) in enumerate(_curve_rows(curve, model)):
      name = model if row == 0 else f"{model}: {label}"
      lines[name] = (curve["levels"], [np.nan if a is None else a for a in accuracy])
      styles[name] = {"color": f"C{index % 10}", "linestyle": ("-", ":", "--")[row]}
  return lines, styles


def _figure(key: str, value: Any) -> str:
  if key == "at":  # a budget
    return f"{value:g}"
  return f"{value:.3f}" if isinstance(value, float) else str(value)


def _verdict(check: Dict[str, Any]) -> str:
  """One check's cell: pass / FAIL / n/a, then the figures behind it."""
  word = {True: "pass", False: "**FAIL**", None: "n/a"}[check["passed"]]
  figures = [value if key == "reason" else f"{key.replace('_', ' ')} {_figure(key, value)}"
             for key, value in check.items() if key != "passed" and value is not None]
  return f"{word}: {'; '.join(figures)}" if figures else word


def sanity_table(curve: Dict[str, Any]) -> str:
  """Per model, each sanity check's verdict and the figures behind it (`robustness.sanity`)."""
  checks = curve["sanity"]
  names = list(checks["rules"])
  return report.markdown_table(["model"] + names,
                               [[model] + [_verdict(verdicts[name]) for name in names]
                                for model, verdicts in checks["models"].items()])


def _sanity_section(curve: Dict[str, Any]) -> list:
  """The sanity checks of Carlini et al. (2019): the rules, then per model a verdict each."""
  return ["### Sanity checks (Carlini et al., 2019, \"On evaluating adversarial robustness\")",
          "", *[f"- {name}: {rule}." for name, rule in curve["sanity"]["rules"].items()], "",
          "Budgets are listed as levels of " + curve["param"] + "; a failed check is a finding "
          "about the attack or the model, not an error of the run.", "", sanity_table(curve)]


def victims_table(results: Dict[str, Any]) -> str:
  """Per victim: training steps, test accuracy and accuracy on the attacked (clean) clips."""
  return report.markdown_table(
      ["model", "steps", "test accuracy", "accuracy on attacked clips"],
      [(name, m["steps"], _cell(m["test_accuracy"]), _cell(m["clean_accuracy"]))
       for name, m in results["models"].items()])


def attacks_table(results: Dict[str, Any],
                  columns: Sequence[Tuple[str, str]] = ATTACK_COLUMNS) -> str:
  """Per model x attack, the figures of `columns` ((results.json key, column) pairs)."""
  return report.markdown_table(
      ["model", "attack", "examples"] + [column for _, column in columns],
      [[model, attack, figures["num_examples"]] + [_cell(figures[key]) for key, _ in columns]
       for model, per_attack in results["attacks"].items()
       for attack, figures in per_attack.items()])


def curve_table(curve: Dict[str, Any]) -> str:
  """Accuracy per model at each level of the curve: the curve attack's, then the sanity
  checks' one-step and twice-the-steps curves where the run has them."""
  return report.markdown_table(
      ["model", "attack"] + [f"{curve['param']}={value:g}" for value in curve["levels"]],
      [[model, label] + [_cell(a) for a in accuracy]
       for model in curve["accuracy"] for label, accuracy in _curve_rows(curve, model)])


def transfer_table(transfer: Dict[str, Any]) -> str:
  """The transfer matrix (`evaluate.TRANSFER_RULE`): rows crafted on, columns scored on."""
  return report.markdown_table(["crafted on \\ scored on"] + transfer["models"],
                               [[row] + [_cell(v) for v in cells]
                                for row, cells in zip(transfer["models"], transfer["matrix"])])


def spectrogram_figure(results: Dict[str, Any], model: str) -> Optional[str]:
  """The spectrogram grid of `model`'s main-attack examples (path in the workdir), if drawn."""
  return results.get("figures", {}).get(model, {}).get("spectrograms")


def markdown(results: Dict[str, Any], findings: str = "") -> str:
  """The Markdown report: the findings block, then models, model x attack, robustness and
  transfer tables, figures."""
  models = list(results["models"])
  lines = [
      f"# Adversarial attacks on {len(models)} sound event classifiers ({results['dataset']})",
      "", findings,
      f"{results['num_clips']} clips of the {results['split']} split, attacked on the waveform; "
      f"{results['wall_seconds']:.0f} s this run. Success rates and confidences are fractions; "
      "perturbation sizes are of the examples each attack made adversarial (see `results.json`).",
      "",
      "## Victims",
      "",
      victims_table(results),
      "",
      "## Attacks",
      "",
      attacks_table(results),
  ]
  broken = [f"{model} / {attack} ({figures['nonfinite_examples']})"
            for model, per_attack in results["attacks"].items()
            for attack, figures in per_attack.items() if figures["nonfinite_examples"]]
  if broken:
    lines += ["", "**Warning**: adversarial examples with NaN or infinity, scored as failed "
              "attacks: " + ", ".join(broken) + "."]
  curve = results["robustness"]
  lines += ["", f"## Accuracy under {curve['attack']} against {curve['param']}", "",
            _step_line(curve), "", curve_table(curve),
            "", f"![robustness]({ROBUSTNESS_PLOT})", "", *_sanity_section(curve)]
  if "auto_attack" in curve:
    lines += ["", *_auto_attack_table(curve)]
  transfer = results["transfer"]
  lines += ["", f"## Transfer of {transfer['attack']} (rows: crafted on; columns: scored on)", "",
            transfer["rule"], "", transfer_table(transfer),
            "", f"![transfer matrix]({TRANSFER_PLOT})", ""]
  spectrograms = [f"![{m}]({spectrogram_figure(results, m)})"
                  for m in models if spectrogram_figure(results, m)]
  if spectrograms:
    lines += ["## Spectrograms and audio", "",
              "Clean, adversarial and perturbation log-mels; listen to the clips in `wav/`.", ""]
    lines += spectrograms + [""]
  return "\n".join(lines)


def sanity_counts(checks: Dict[str, Any]) -> Tuple[int, int, int, List[str]]:
  """Of the sanity checks (`robustness.sanity`) of every model: (passed, made, not applicable,
  the failed ones as "<model> <check>")."""
  verdicts = [(model, name, check["passed"]) for model, per_model in checks["models"].items()
              for name, check in per_model.items()]
  made = [v for v in verdicts if v[2] is not None]
  failed = [f"{model} {name}" for model, name, passed in made if not passed]
  return len(made) - len(failed), len(made), len(verdicts) - len(made), failed


def _sanity_summary(checks: Dict[str, Any]) -> str:
  """One line: how many sanity checks passed, and which failed."""
  passed, made, not_made, failed = sanity_counts(checks)
  return (f"Sanity checks of the robustness curve: {passed} of {made} passed ({not_made} not "
          "applicable)" + (f"; failed: {', '.join(failed)}." if failed else "."))


def summary(results: Dict[str, Any]) -> str:
  """A one-screen Markdown summary (the quickstart links each stage's `summary.md`)."""
  transfer = results["transfer"]
  rows = []
  for model, per_attack in results["attacks"].items():
    figures = per_attack[transfer["attack"]]
    rows.append((model, _cell(results["models"][model]["clean_accuracy"]),
                 _cell(figures["success_rate_clean_correct"]), _cell(figures["snr_db_median"])))
  return "\n".join([
      f"# Adversarial attacks ({results['dataset']}, {results['num_clips']} clips)", "",
      report.markdown_table(["model", "clean accuracy",
                             f"{transfer['attack']} success on clean-correct clips",
                             "SNR dB median"], rows), "",
      _sanity_summary(results["robustness"]["sanity"]), "",
      "Every attack, robustness curves, the transfer matrix and figures: "
      "[results.md](results.md).", ""])


def write_examples(workdir: str, config: ml_collections.ConfigDict, model: str, x: np.ndarray,
                   x_adv: np.ndarray, class_names, labels, log_mel) -> Dict[str, Any]:
  """Spectrogram grid and clean/adversarial WAV files of the first `config.num_examples` clips.

  `log_mel` is the batched display front end, shared so that it compiles once.
  """
  count = min(config.num_examples, len(x))
  if count == 0:
    return {}
  clean, adv = x[:count], x_adv[:count]
  grids = np.asarray(log_mel(np.concatenate([clean, adv, adv - clean])))
  images = [[grids[i], grids[count + i], grids[2 * count + i]] for i in range(count)]
  path = os.path.join(workdir, f"spectrograms_{model}.png")
  report.plot_spectrograms(
      images, path, row_titles=[class_names[label] for label in labels[:count]],
      column_titles=["clean", "adversarial", "perturbation"],
      title=f"{config.main_attack} on {model} (log-mel dB)")
  wav_dir = report.ensure_dir(os.path.join(workdir, "wav"))
  wavs = []
  for i in range(count):
    for kind, clip in (("clean", clean[i]), ("adversarial", adv[i])):
      name = f"{model}_{i}_{class_names[labels[i]]}_{kind}.wav"
      # 32-bit float keeps the perturbation exactly; 16-bit PCM would quantise it away.
      soundfile.write(os.path.join(wav_dir, name), clip, config.frontend.sample_rate,
                      subtype="FLOAT")
      wavs.append(os.path.join("wav", name))
  return {"spectrograms": os.path.basename(path), "wav": wavs}


@report.on_process_zero
def write(workdir: str, config: ml_collections.ConfigDict, results: Dict[str, Any],
          x: np.ndarray, adversarial: Dict[str, np.ndarray], findings: str) -> None:
  """Writes every output file of the experiment into `workdir` (and `results["figures"]`);
  `results.md` opens with `findings` (Markdown)."""
  class_names, labels = results["class_names"], np.asarray(results["labels"])
  log_mel = jax.jit(jax.vmap(frontend.log_mel(**config.frontend)))
  results["figures"] = {
      model: write_examples(workdir, config, model, x, x_adv, class_names, labels, log_mel)
      for model, x_adv in adversarial.items()}
  transfer = results["transfer"]
  matrix = np.array([[np.nan if v is None else v for v in row] for row in transfer["matrix"]])
  report.plot_heatmap(matrix, transfer["models"], transfer["models"],
                      os.path.join(workdir, TRANSFER_PLOT),
                      title=f"Transfer of {transfer['attack']}: success rate",
                      xlabel="scored on", ylabel="crafted on")
  curve = results["robustness"]
  lines, styles = robustness_lines(curve)
  report.plot_curves(
      lines, os.path.join(workdir, ROBUSTNESS_PLOT), styles=styles,
      title=f"Accuracy under {curve['attack']}", xlabel=curve["param"],
      ylabel="accuracy on attacked clips", invert_x=curve["param"] == "snr_db")
  report.write_json(os.path.join(workdir, "results.json"), results)
  for name, text in (("results.md", markdown(results, findings)),
                     ("summary.md", summary(results))):
    with open(os.path.join(workdir, name), "w") as file:
      file.write(text)
