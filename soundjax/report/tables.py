"""Machine- and human-readable results: JSON files and Markdown tables."""

import json
from typing import Any, Sequence

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
