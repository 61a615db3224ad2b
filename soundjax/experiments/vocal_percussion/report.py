"""What the vocal percussion experiment writes: `results.json`, `results.md` (the published table:
method x participant-wise and boxeme-wise KNN accuracy, mean +- std over seeds; then every
classifier), `summary.md`, the saliency figure and the embeddings' 2-D projections.
"""

import os
from typing import Any, Dict, List, Tuple

import matplotlib.pyplot as plt
import numpy as np

from soundjax import report  # report selects the headless backend first.
from soundjax.experiments.vocal_percussion import robustness

# Row names of the published table.
LEVEL_NAMES = {"instrument": "Instrument Original", "instrument_reduced": "Instrument Reduced",
               "syllable": "Syllable Original", "syllable_reduced": "Syllable Reduced",
               "phoneme": "Phoneme Original", "phoneme_reduced": "Phoneme Reduced",
               "boxeme": "Boxeme Original"}
BASELINE_NAMES = {"gmm_hmm": "GMM-HMM (hmmlearn, standing in for Kaldi)",
                  "timbre": "Timbre (MFCC + envelope)", "feature_selection": "Feature Selection"}
METHOD_NAMES = {"knn": "KNN (mean over k)", "logistic_regression": "logistic regression",
                "random_forest": "random forest"}


def rows(results: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
  """(row name, entry with "mean"/"std") of the baselines in the published order, then the
  embedding levels."""
  found = [(BASELINE_NAMES[name], results["baselines"][name]) for name in BASELINE_NAMES
           if name in results["baselines"]]
  return found + [(LEVEL_NAMES[name], entry) for name, entry in results["embeddings"].items()]


def method_of(entry: Dict[str, Any], method: str) -> str:
  """`method`, or the entry's own when it has one method only (the recogniser classifies by
  itself, so it fills the published table's row with its own figure)."""
  own = list(entry["mean"]["participant_wise"])
  return own[0] if method not in own and len(own) == 1 else method


def _cell(entry: Dict[str, Any], key: str, method: str, *, own: bool = True) -> str:
  method = method_of(entry, method) if own else method
  if method not in entry["mean"][key]:
    return "—"
  return f"{entry['mean'][key][method]:.3f} ± {entry['std'][key][method]:.3f}"


def columns(results: Dict[str, Any]) -> List[str]:
  """The classifier columns: the published KNN figure first, then each method."""
  methods = results["methods"]
  return (["knn"] if any(m.startswith("knn_") for m in methods) else []) + list(methods)


def best(results: Dict[str, Any], method: str) -> str:
  """The row of highest mean participant-wise accuracy of `method`."""
  return max(rows(results),
             key=lambda row: row[1]["mean"]["participant_wise"][method_of(row[1], method)])[0]


def markdown(results: Dict[str, Any], findings: str = "") -> str:
  """The Markdown report: the findings block, the published-layout table, the other classifiers,
  the figures."""
  first = columns(results)[0]
  users = ", ".join(results["held_out_user_names"])
  lines = [
      f"# User-based vocal percussion classification ({results['dataset']})", "", findings,
      f"{len(results['held_out_users'])} held-out users ({users}), "
      f"{results['num_records']['train']} isolated-take and {results['num_records']['test']} "
      f"improvised records of theirs; {len(results['seeds'])} seed(s); "
      f"{results['wall_seconds']:.0f} s this run. Per user, a classifier is fit on the user's "
      "isolated takes (instrument labels) and scored on their improvised take. "
      "Participant-wise: the mean over users; boxeme-wise: users weighted by their test records. "
      "Every cell is mean ± std over seeds (for the baselines the seeds move only the random "
      "forest, logistic regression and the feature ranking). Each embedding CNN is the state "
      "of best accuracy on the training users' improvised takes (never trained on; the held-out "
      "users are left out of training and selection alike).", "",
      f"## {METHOD_NAMES.get(first, first)} (the published table)", "",
      report.markdown_table(["Method", "Participant-wise acc.", "Boxeme-wise acc."],
                            [[name, _cell(entry, "participant_wise", first),
                              _cell(entry, "boxeme_wise", first)]
                             for name, entry in rows(results)]), ""]
  for key, title in (("participant_wise", "Participant-wise"), ("boxeme_wise", "Boxeme-wise")):
    lines += [f"## {title} accuracy of every classifier", "",
              report.markdown_table(["Method"] + [METHOD_NAMES.get(m, m) for m in
                                                  columns(results)],
                                    [[name] + [_cell(entry, key, m, own=False)
                                               for m in columns(results)]
                                     for name, entry in rows(results)
                                     if first in entry["mean"][key]]), ""]
  lines += ["## Per-user accuracy (first seed, " + METHOD_NAMES.get(first, first) + ")", "",
            _per_user_table(results, first), ""]
  if "saliency" in results:
    lines += ["## Saliency", "",
              f"|d logit(predicted instrument) / d patch| of the instrument models, averaged over "
              f"{results['saliency']['clips']} held-out isolated-take clips (by true instrument) "
              f"and {len(results['seeds'])} seed(s).", "", "![saliency maps](saliency.png)", ""]
  lines += ["## Embeddings", "",
            "The held-out users' embeddings (first seed) projected on their first two principal "
            "components, by instrument; filled: isolated takes, hollow: improvised.", "",
            "![embedding projections](embedding_scatter.png)", ""]
  if "gmm_hmm" in results["baselines"]:
    lines += ["The GMM-HMM row stands in for the published Kaldi tri3b recogniser: one "
              "left-to-right GMM-HMM per instrument fit per user on 13 MFCCs (hmmlearn), each "
              "utterance classified by likelihood, with no lexicon, language model, triphones or "
              "speaker adaptation (`vocal_percussion.recogniser`).", ""]
  attacked = {LEVEL_NAMES[level]: entry["robustness"]
              for level, entry in results["embeddings"].items() if "robustness" in entry}
  if attacked:
    lines += ["## Robustness of the per-user classifiers (beyond the paper)", "",
              "Linf PGD on the held-out users' improvised-take patches (normalised, in [0, 1]) "
              "ascending each model's own loss; the users' classifiers are fit on clean "
              "isolated-take embeddings and scored on the adversarial improvised ones. "
              "Mean ± std over seeds.", "",
              robustness.table(attacked, first), ""]
  lines += ["Not run here: XGBoost (of the published alternatives).", ""]
  return "\n".join(lines)


def _per_user_table(results: Dict[str, Any], method: str) -> str:
  names = results["held_out_user_names"]
  body = []
  for name, entry in rows(results):
    run, own = entry["runs"][0], method_of(entry, method)
    values = (np.mean([run["per_user"][m] for m in run["per_user"] if m.startswith("knn_")],
                      axis=0) if own == "knn" else run["per_user"][own])
    body.append([name] + [f"{v:.3f}" for v in values])
  return report.markdown_table(["Method"] + names, body)


def summary(results: Dict[str, Any]) -> str:
  """A one-screen Markdown summary (the quickstart links each stage's `summary.md`)."""
  first = columns(results)[0]
  table = report.markdown_table(
      ["Method", "Participant-wise", "Boxeme-wise"],
      [[name, _cell(entry, "participant_wise", first), _cell(entry, "boxeme_wise", first)]
       for name, entry in rows(results)])
  return "\n".join([
      f"# Vocal percussion: per-user {METHOD_NAMES.get(first, first)} accuracy", "", table, "",
      f"Best: {best(results, first)}. Details, every classifier and the saliency maps: "
      "[results.md](results.md).", ""])


def plot_embeddings(workdir: str, results: Dict[str, Any], path: str) -> None:
  """One panel per level: the first seed's held-out embeddings on their first two principal
  components (of the z-scored features), coloured by instrument."""
  levels = list(results["embeddings"])
  figure, axes = plt.subplots(1, len(levels), figsize=(4 * len(levels), 3.6), squeeze=False)
  for axes_, level in zip(axes[0], levels):
    saved = np.load(os.path.join(workdir, results["embeddings"][level]["runs"][0]
                                 ["embeddings_file"]))
    z = saved["embeddings"]
    z = (z - z.mean(0)) / (z.std(0) + 1e-12)
    _, _, components = np.linalg.svd(z, full_matrices=False)
    xy = z @ components[:2].T
    for k, name in enumerate(results["instrument_names"]):
      colour = f"C{k}"
      for isolated, fill in ((True, colour), (False, "none")):
        pick = (saved["instrument"] == k) & (saved["is_train"] == isolated)
        axes_.scatter(xy[pick, 0], xy[pick, 1], s=12, facecolors=fill, edgecolors=colour,
                      label=name if isolated else None)
    axes_.set_title(LEVEL_NAMES[level], fontsize=10)
    axes_.set_xlabel("PC 1")
    axes_.set_ylabel("PC 2")
  axes[0, 0].legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


@report.on_process_zero
def write(workdir: str, results: Dict[str, Any], saliency: Dict[str, Any],
          findings: str) -> None:
  """Writes every output file into `workdir` (and `results["figures"]`); `results.md` opens
  with `findings` (Markdown)."""
  figures = {}
  if saliency["maps"]:
    maps = np.mean(saliency["maps"], axis=0)  # Over seeds.
    classes = np.unique(saliency["instruments"])
    patches = [saliency["patches"][saliency["instruments"] == k].mean(axis=0) for k in classes]
    report.plot_spectrograms([patches, list(maps)], os.path.join(workdir, "saliency.png"),
                             row_titles=["mean patch", "mean |gradient|"],
                             column_titles=results["saliency"]["instruments"],
                             title="Instrument models: saliency of the predicted class")
    figures["saliency"] = "saliency.png"
  plot_embeddings(workdir, results, os.path.join(workdir, "embedding_scatter.png"))
  figures["embeddings"] = "embedding_scatter.png"
  results["figures"] = figures
  report.write_json(os.path.join(workdir, "results.json"), results)
  for name, text in (("results.md", markdown(results, findings)),
                     ("summary.md", summary(results))):
    with open(os.path.join(workdir, name), "w") as file:
      file.write(text)
