"""Paper 3's results page: does memory-controlled self-attention beat the CRNN without it?

The figure is the test event-based F-score (the published setting: 250 ms onset collar, offsets
not evaluated), mean over seeds. The attention detector compared is the one of highest mean test
F among every width and the multi-head model (`report.best_attention`), as the paper reports its
best configuration. The verdict has two parts: it beats the baseline, and by more than the seeds'
spread (the sum of the two standard deviations).
"""

from typing import Any, Dict, List, Optional, Tuple

from soundjax.experiments import results_page
from soundjax.experiments.results_page import Claim, Finding, Part
from soundjax.experiments.sed import report, setup

TITLE = "Paper 3: sound event detection with memory-controlled self-attention"
# Published event-based F-scores on URBAN-SED (fractions), without and with self-attention.
PUBLISHED_BASELINE, PUBLISHED_ATTENTION = 0.2010, 0.3392
CLAIM = Claim(
    paper="Pankajakshan et al., \"Memory controlled sequential self attention for sound "
          "recognition\", Interspeech 2020",
    text="a CRNN with memory-controlled self-attention detects sound events better than the "
         f"CRNN alone: event-based F {100 * PUBLISHED_ATTENTION:.2f} % against "
         f"{100 * PUBLISHED_BASELINE:.2f} % on URBAN-SED.")


def _f(entry: Dict[str, Any], statistic: str = "mean") -> Optional[float]:
  """The entry's mean test event F, or its std over seeds (None from one seed)."""
  if statistic == "std" and len(entry["runs"]) < 2:
    return None
  return entry[statistic]["event"]["f_measure"]


def _compared(results: Dict[str, Any]) -> Tuple[Optional[Dict], Optional[str], Optional[Dict]]:
  """(baseline entry, best attention detector's name, its entry); None for what is missing."""
  detectors = results["detectors"]
  best = report.best_attention(results)
  return detectors.get(setup.BASELINE), best, detectors.get(best) if best else None


def _attention(results: Dict[str, Any]) -> List[str]:
  return [name for name in results["detectors"] if name != setup.BASELINE]


def findings(results: Dict[str, Any]) -> List[Finding]:
  """Event F of the baseline and of the best attention detector, the gain, and how many
  attention detectors beat the baseline."""
  baseline, best, entry = _compared(results)
  seeds = len(results["seeds"])
  found = []
  if baseline is not None:
    found.append(Finding("test event F, CRNN without attention", _f(baseline),
                         _f(baseline, "std"), PUBLISHED_BASELINE, note=f"{seeds} seed(s)"))
  if entry is not None:
    found.append(Finding(
        "test event F, best attention detector", _f(entry), _f(entry, "std"),
        PUBLISHED_ATTENTION,
        note=f"{best} (widths {_widths(entry)}), the best of {len(_attention(results))} "
             "attention detectors by mean test event F"))
  if baseline is not None and entry is not None and _f(baseline) is not None:
    found.append(Finding("gain of the best attention detector in event F", _gain(results),
                         published=round(PUBLISHED_ATTENTION - PUBLISHED_BASELINE, 4)))
    above = [n for n in _attention(results)
             if (_f(results["detectors"][n]) or 0.0) > _f(baseline)]
    found.append(Finding("share of attention detectors above the baseline",
                         len(above) / len(_attention(results)),
                         note=f"{len(above)} of {len(_attention(results))}: "
                              f"{', '.join(above) or 'none'}"))
  return found


def _widths(entry: Dict[str, Any]) -> str:
  return ", ".join("all" if w is None else str(w) for w in entry["widths"])


def _gain(results: Dict[str, Any]) -> float:
  baseline, _, entry = _compared(results)
  return _f(entry) - _f(baseline)


def verdict(results: Dict[str, Any]) -> results_page.Verdict:
  """Reproduces if the best attention detector beats the baseline by more than the sum of their
  standard deviations over seeds; partly if it beats it by less (or with one seed); does not if
  it does not beat it."""
  baseline, best, entry = _compared(results)
  seeds = len(results["seeds"])
  subject = f"on {results['dataset']} ({seeds} seed(s))"
  if baseline is None or entry is None or _f(baseline) is None:
    return results_page.judge([], subject=subject,
                              missing="the run lacks a scored baseline or attention detector")
  gain = _gain(results)
  parts = [Part(gain > 0, f"the best attention detector ({best}) has event F {_f(entry):.3f} "
                          f"against the baseline's {_f(baseline):.3f} ("
                          f"{'+' if gain >= 0 else '-'}{abs(gain):.3f})")]
  if seeds < 2:
    parts.append(Part(False, "one seed gives no spread to compare the gain with"))
  else:
    spread = _f(entry, "std") + _f(baseline, "std")
    parts.append(Part(gain > spread, f"the gain is {'above' if gain > spread else 'within'} the "
                                     f"seeds' spread ({spread:.3f}, the sum of the two "
                                     "standard deviations)"))
  return results_page.judge(parts, subject=subject)


def tables(results: Dict[str, Any]) -> List[str]:
  """The experiment's test-score table (every detector, mean ± std over seeds)."""
  return [report.scores_table(results)]


def figures(results: Dict[str, Any]) -> List[Tuple[str, str]]:
  """Event F against width, against the attack's SNR (if attacked), and the piano rolls."""
  shown = [(report.WIDTH_PLOT, "test event F against attention width")]
  if any("robustness" in entry for entry in results["detectors"].values()):
    shown.append((report.SNR_PLOT, "test event F under PGD against the SNR floor"))
  piano_rolls = results.get("figures", {}).get("piano_rolls")
  if piano_rolls:
    shown.append((piano_rolls, "reference and predicted events (first seed)"))
  return shown
