"""Sanity checks of a robustness curve, after Carlini et al., "On evaluating adversarial
robustness" (2019): pure functions of accuracy curves, each returning whether it passed and the
figures behind the verdict. A failed check is a finding to report, never an error.

Every curve is a list of accuracies in the order of `levels`; `larger_is_stronger` says which way
the budget grows (True for eps, False for an SNR in dB). `None` accuracies (no clips) are
skipped.

(a) "monotone": accuracy never rises as the budget grows (by more than `rise_tolerance`).
(b) "reaches_zero": at the largest budget accuracy is at most `zero_accuracy`.
(c) "iterative_beats_one_step": at every level the iterative attack's accuracy is at most the
    one-step attack's (plus `rise_tolerance`): more steps of the same budget must not do worse.
(d) "more_steps_change_little": at every level, twice the steps moves accuracy by at most
    `steps_tolerance` (a converged attack; a larger drop means the curve was step-limited).
"""

from typing import Any, Dict, Optional, Sequence

import numpy as np

# The checks, in report order, each with the rule it states (`{...}` are its thresholds).
CHECKS = {
    "monotone": "accuracy never rises by more than {rise_tolerance:g} as the budget grows",
    "reaches_zero": "accuracy at the largest budget is at most {zero_accuracy:g}",
    "iterative_beats_one_step": "at every budget the iterative attack's accuracy is at most the "
                                "one-step attack's + {rise_tolerance:g}",
    "more_steps_change_little": "at every budget twice the steps changes accuracy by at most "
                                "{steps_tolerance:g}",
}


# The thresholds of the checks (`config.robustness.sanity` sets each).
THRESHOLDS = ("rise_tolerance", "zero_accuracy", "steps_tolerance")


def rules(**thresholds: float) -> Dict[str, str]:
  """Each check's rule with `thresholds` (`rise_tolerance`, `zero_accuracy`, `steps_tolerance`)
  filled in."""
  return {name: rule.format(**thresholds) for name, rule in CHECKS.items()}


def not_applicable(reason: str) -> Dict[str, Any]:
  """The verdict of a check that cannot be made here, and why."""
  return {"passed": None, "reason": reason}


def _by_strength(levels: Sequence[float], larger_is_stronger: bool, *curves: Sequence) -> tuple:
  """`levels` and `curves` reordered from the smallest budget to the largest, without the levels
  where any curve is None."""
  order = np.argsort(np.asarray(levels, np.float64), kind="stable")
  order = order if larger_is_stronger else order[::-1]
  keep = [i for i in order if all(c[i] is not None for c in curves)]
  return ([float(levels[i]) for i in keep],
          *(np.asarray([c[i] for i in keep], np.float64) for c in curves))


def monotone(levels: Sequence[float], accuracy: Sequence[Optional[float]], *,
             larger_is_stronger: bool, rise_tolerance: float = 0.0) -> Dict[str, Any]:
  """(a): accuracy never rises with the budget.

  Returns:
    `passed`; `largest_rise` (the largest increase of accuracy from one budget to the next
    larger, 0 if it never rises) and `at` (the larger budget of that step, None if none).
  """
  levels, accuracy = _by_strength(levels, larger_is_stronger, accuracy)
  if len(accuracy) < 2:
    return not_applicable("needs accuracies at two budgets at least")
  rises = np.diff(accuracy)
  worst = int(np.argmax(rises))
  rise = max(float(rises[worst]), 0.0)
  return {"passed": bool(rise <= rise_tolerance), "largest_rise": rise,
          "at": levels[worst + 1] if rise > 0 else None}


def reaches_zero(levels: Sequence[float], accuracy: Sequence[Optional[float]], *,
                 larger_is_stronger: bool, zero_accuracy: float = 0.05) -> Dict[str, Any]:
  """(b): the largest budget drives accuracy to about 0.

  Returns:
    `passed`; `accuracy` at the largest budget and that budget, `at`.
  """
  levels, accuracy = _by_strength(levels, larger_is_stronger, accuracy)
  if not len(accuracy):
    return not_applicable("no accuracy was measured")
  return {"passed": bool(accuracy[-1] <= zero_accuracy), "accuracy": float(accuracy[-1]),
          "at": levels[-1]}


def iterative_beats_one_step(levels: Sequence[float], iterative: Sequence[Optional[float]],
                             one_step: Sequence[Optional[float]], *, larger_is_stronger: bool,
                             rise_tolerance: float = 0.0) -> Dict[str, Any]:
  """(c): at equal budget the iterative attack leaves no more clips correct than the one-step.

  Returns:
    `passed`; `largest_excess` (the largest `iterative - one_step`, negative if the iterative
    attack is stronger everywhere) at budget `at`; `mean_gain` (mean `one_step - iterative`).
  """
  levels, iterative, one_step = _by_strength(levels, larger_is_stronger, iterative, one_step)
  if not len(levels):
    return not_applicable("no accuracy was measured")
  excess = iterative - one_step
  worst = int(np.argmax(excess))
  return {"passed": bool(excess[worst] <= rise_tolerance), "largest_excess": float(excess[worst]),
          "at": levels[worst], "mean_gain": float(-np.mean(excess))}


def more_steps_change_little(levels: Sequence[float], accuracy: Sequence[Optional[float]],
                             doubled: Sequence[Optional[float]], *, larger_is_stronger: bool,
                             steps_tolerance: float = 0.05) -> Dict[str, Any]:
  """(d): twice the steps changes accuracy by little at every budget.

  Returns:
    `passed`; `largest_change` (the largest `|doubled - accuracy|`) at budget `at`, and
    `mean_change` (mean `doubled - accuracy`: negative when more steps find more).
  """
  levels, accuracy, doubled = _by_strength(levels, larger_is_stronger, accuracy, doubled)
  if not len(levels):
    return not_applicable("no accuracy was measured")
  change = doubled - accuracy
  worst = int(np.argmax(np.abs(change)))
  return {"passed": bool(abs(change[worst]) <= steps_tolerance),
          "largest_change": float(abs(change[worst])), "at": levels[worst],
          "mean_change": float(np.mean(change))}


def check_curves(levels: Sequence[float], accuracy: Sequence[Optional[float]], *,
                 larger_is_stronger: bool, one_step: Optional[Sequence] = None,
                 doubled: Optional[Sequence] = None, rise_tolerance: float = 0.0,
                 zero_accuracy: float = 0.05, steps_tolerance: float = 0.05,
                 missing: str = "") -> Dict[str, Dict[str, Any]]:
  """The four checks of one model's curves, keyed as `CHECKS`.

  Args:
    levels: the budgets, in any order.
    accuracy: the iterative (curve) attack's accuracy at each level.
    larger_is_stronger: True if a larger level is a larger budget.
    one_step: the one-step attack's accuracy at each level, or None (check (c) not applicable).
    doubled: the curve attack's accuracy with twice the steps, or None ((d) not applicable).
    rise_tolerance: the rise (a) and the excess (c) allowed.
    zero_accuracy: the accuracy (b) allows at the largest budget.
    steps_tolerance: the change (d) allows.
    missing: why `one_step` or `doubled` is None, for the report.
  """
  order = dict(larger_is_stronger=larger_is_stronger)
  return {
      "monotone": monotone(levels, accuracy, rise_tolerance=rise_tolerance, **order),
      "reaches_zero": reaches_zero(levels, accuracy, zero_accuracy=zero_accuracy, **order),
      "iterative_beats_one_step": (
          not_applicable(missing) if one_step is None else
          iterative_beats_one_step(levels, accuracy, one_step, rise_tolerance=rise_tolerance,
                                   **order)),
      "more_steps_change_little": (
          not_applicable(missing) if doubled is None else
          more_steps_change_little(levels, accuracy, doubled, steps_tolerance=steps_tolerance,
                                   **order)),
  }
