"""Machine- and human-readable results: JSON files and Markdown tables."""

import json
from typing import Any, Dict, Sequence

import numpy as np


def write_json(path: str, payload: Any) -> None:
  """Writes `payload` as indented JSON (numpy scalars and arrays become plain numbers/lists)."""
  with open(path, "w") as file:
    json.dump(payload, file, indent=2, default=lambda value: np.asarray(value).tolist())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A GitHub-flavoured Markdown table; floats are printed with 3 decimals."""
  def cell(value):
    return f"{value:.3f}" if isinstance(value, (float, np.floating)) else str(value)
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
  return "\n".join(lines)


def mean_std(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """`{"mean": ..., "std": ...}` (population std) of the numeric leaves of same-structured
  results over runs, e.g. seeds: NaN and None ignored, None where every run has none;
  non-numeric leaves (names, lists) are left out.

  Example:
    >>> mean_std([{"f": 0.25, "class": {"dog": 1.0}}, {"f": 0.75, "class": {"dog": None}}])
    {'mean': {'f': 0.5, 'class': {'dog': 1.0}}, 'std': {'f': 0.25, 'class': {'dog': 0.0}}}
  """
  def leaves(values, reduce):
    first = values[0]
    if isinstance(first, dict):
      return {k: leaves([v[k] for v in values], reduce) for k in first}
    array = np.array([np.nan if v is None else v for v in values], np.float64)
    return None if np.isnan(array).all() else float(reduce(array))
  numeric = [{k: v for k, v in run.items() if isinstance(v, (dict, int, float))} for run in runs]
  return {"mean": leaves(numeric, np.nanmean), "std": leaves(numeric, np.nanstd)}
