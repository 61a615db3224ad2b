"""Paper 2's results page: do syllable-level embeddings classify a user's vocal percussion better
than instrument-level ones and than the baselines?

The figure is the published one: per-user KNN accuracy (the mean over k = 3..11), participant-wise
(the mean over the held-out users), mean over seeds. The verdict has two parts: syllable beats
instrument, and syllable beats every baseline the run holds (timbre, feature selection, the
GMM-HMM recogniser, which classifies by itself).
"""

from typing import Any, Dict, List, Optional, Tuple

from soundjax.experiments import results_page
from soundjax.experiments.results_page import Claim, Finding, Part
from soundjax.experiments.vocal_percussion import report
from soundjax.report import markdown_table

TITLE = "Paper 2: deep embeddings for user-based amateur vocal percussion classification"
# The published KNN table on AVP-LVT (README of the published code): (participant-wise,
# boxeme-wise) accuracy per `results.json` row key.
PUBLISHED = {
    "gmm_hmm": (0.725, 0.734), "timbre": (0.840, 0.835), "feature_selection": (0.827, 0.795),
    "instrument": (0.812, 0.774), "instrument_reduced": (0.779, 0.738),
    "syllable": (0.899, 0.874), "syllable_reduced": (0.883, 0.852),
    "phoneme": (0.876, 0.840), "phoneme_reduced": (0.874, 0.838), "boxeme": (0.861, 0.832),
}
CLAIM = Claim(
    paper="Delgado et al., \"Deep embeddings for robust user-based amateur vocal percussion "
          "classification\", SMC 2022",
    text="embeddings of a CNN supervised with syllable-level labels classify a user's vocal "
         "percussion best: per-user KNN, participant-wise accuracy "
         f"{PUBLISHED['syllable'][0]:.3f} against {PUBLISHED['instrument'][0]:.3f} for "
         f"instrument-level labels, {PUBLISHED['timbre'][0]:.3f} for timbre features, "
         f"{PUBLISHED['feature_selection'][0]:.3f} for feature selection and "
         f"{PUBLISHED['gmm_hmm'][0]:.3f} for a speech recogniser, on AVP-LVT.")
# The published figure's classifier (`report.columns`: the mean over k of the KNN methods).
METHOD = "knn"
COMPARED, AGAINST = "syllable", "instrument"


def _entries(results: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
  """Every row of the table by its `results.json` key: baselines first, then the levels."""
  return {**results["baselines"], **results["embeddings"]}


def _name(key: str) -> str:
  return report.BASELINE_NAMES.get(key) or report.LEVEL_NAMES[key]


def accuracy(entry: Dict[str, Any], key: str = "participant_wise",
             statistic: str = "mean") -> Optional[float]:
  """An entry's KNN figure (the recogniser's own), or None if the run has no KNN."""
  return entry[statistic][key].get(report.method_of(entry, METHOD))


def _classifier(entry: Dict[str, Any]) -> str:
  return "KNN" if report.method_of(entry, METHOD) == METHOD else "its own classification"


def findings(results: Dict[str, Any]) -> List[Finding]:
  """Participant-wise KNN accuracy of the syllable and instrument levels and of each baseline,
  and which row is best."""
  entries, seeds = _entries(results), len(results["seeds"])
  found = [Finding(f"participant-wise accuracy, {_name(key)}", accuracy(entries[key]),
                   accuracy(entries[key], statistic="std"), PUBLISHED[key][0],
                   note=f"{_classifier(entries[key])}, {seeds} seed(s)")
           for key in [COMPARED, AGAINST] + list(results["baselines"])
           if key in entries and accuracy(entries[key]) is not None]
  scored = {key: accuracy(entry) for key, entry in entries.items()
            if accuracy(entry) is not None}
  if scored:
    top = max(scored, key=scored.get)
    found.append(Finding("participant-wise accuracy, best row", scored[top],
                         note=f"{_name(top)}, of {len(scored)} rows"))
  return found


def _clause(winner: str, loser: str, entries: Dict[str, Dict[str, Any]]) -> Part:
  ours, theirs = accuracy(entries[winner]), accuracy(entries[loser])
  holds = ours > theirs
  return Part(holds, f"{_name(winner)} {'beats' if holds else 'does not beat'} {_name(loser)} "
                     f"({ours:.3f} against {theirs:.3f})")


def verdict(results: Dict[str, Any]) -> results_page.Verdict:
  """Reproduces if syllable beats instrument and every baseline run; partly if one of the two
  holds; does not if neither."""
  entries = _entries(results)
  subject = (f"on {results['dataset']} ({len(results['held_out_users'])} held-out users, "
             f"{len(results['seeds'])} seed(s))")
  lacking = [_name(key) for key in (COMPARED, AGAINST)
             if key not in entries or accuracy(entries[key]) is None]
  if lacking:
    return results_page.judge([], subject=subject,
                              missing=f"the run has no KNN figure of {' or '.join(lacking)}")
  parts = [_clause(COMPARED, AGAINST, entries)]
  baselines = [key for key in results["baselines"] if accuracy(entries[key]) is not None]
  if baselines:
    strongest = max(baselines, key=lambda key: accuracy(entries[key]))
    part = _clause(COMPARED, strongest, entries)
    parts.append(Part(part.holds, part.text + (", the strongest baseline"
                                               if len(baselines) > 1 else "")))
  return results_page.judge(parts, subject=subject)


def tables(results: Dict[str, Any]) -> List[str]:
  """Our KNN table beside the published one (participant- and boxeme-wise, mean ± std)."""
  rows = []
  for key, entry in _entries(results).items():
    ours = [f"{accuracy(entry, k):.3f} ± {accuracy(entry, k, 'std'):.3f}"
            if accuracy(entry, k) is not None else "—" for k in ("participant_wise",
                                                                  "boxeme_wise")]
    rows.append([_name(key)] + ours + [f"{value:.3f}" for value in PUBLISHED[key]])
  return [markdown_table(["Method", "participant-wise (ours)", "boxeme-wise (ours)",
                          "participant-wise (published)", "boxeme-wise (published)"], rows)]


def figures(results: Dict[str, Any]) -> List[Tuple[str, str]]:
  """The saliency maps (if any) and the embedding projections."""
  captions = {"saliency": "saliency of the instrument models",
              "embeddings": "held-out users' embeddings, first two principal components"}
  return [(path, captions[kind]) for kind, path in results.get("figures", {}).items()
          if kind in captions]
