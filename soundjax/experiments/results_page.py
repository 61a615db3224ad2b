"""A paper's results page (`docs/results/<name>.md`), written from a run's `results.json`.

Each paper's experiment package has a `page` module (`soundjax.experiments.<name>.page`) that
says what the page holds; this module lays it out, the same way for every paper:

  TITLE: str                                   the page's heading
  CLAIM: Claim                                 the paper's claim and its published figure
  findings(results) -> List[Finding]           the few figures that answer the paper's question
  verdict(results) -> Verdict                  whether the claim reproduces, from the figures
  tables(results) -> List[str]                 Markdown tables of our figures
  figures(results) -> List[Tuple[str, str]]    (path in the workdir, caption) of its figures

The findings block (`findings_block`) opens the experiment's own report too, so the page and
`report.html` say the same. Nothing on a page is typed in: every figure and the verdict come from
`results.json`, the claim from the page module's constants.

Example:
  >>> page = load_page("sed")
  >>> write_page(page, "sed", "runs/reproduce_sed", "docs/results",
  ...            command="./scripts/reproduce_sed.sh")
  'docs/results/sed.md'
"""

import dataclasses
import importlib
import json
import math
import os
import subprocess
from types import ModuleType
from typing import Any, Dict, Optional, Sequence

from PIL import Image

# The outcomes of a verdict: how many parts of the claim hold (all, some, none); NOT_JUDGED when
# the run lacks what the claim is about (e.g. a level or a domain it did not run).
REPRODUCES, PARTLY, DOES_NOT, NOT_JUDGED = ("reproduces", "partly reproduces",
                                            "does not reproduce", "cannot be judged")
# Figures copied next to a page are scaled down to at most this width (pixels).
MAX_FIGURE_WIDTH = 900
# The attributes a page module defines (see the module docstring).
PAGE_ATTRIBUTES = ("TITLE", "CLAIM", "findings", "verdict", "tables", "figures")


@dataclasses.dataclass(frozen=True)
class Claim:
  """What the paper claims.

  Attributes:
    paper: the paper, e.g. "Paper 3: Pankajakshan et al., Interspeech 2020".
    text: the claim in one sentence with its published figure(s).
  """
  paper: str
  text: str


@dataclasses.dataclass(frozen=True)
class Finding:
  """One figure that answers the paper's question.

  Attributes:
    label: what it is, e.g. "event F, baseline CRNN" (no ':' or '*': they delimit it on a page).
    value: our figure (None where the run has none, e.g. an undefined F-score).
    spread: its standard deviation over seeds or models, if any.
    published: the paper's figure for the same quantity, if any.
    note: a short remark after the figures.
  """
  label: str
  value: Optional[float]
  spread: Optional[float] = None
  published: Optional[float] = None
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Part:
  """One part of a claim, checked on our figures: whether it holds, and why, as a clause whose
  numbers come from the results (e.g. "attention (0.27) beats the baseline (0.24)")."""
  holds: bool
  text: str


@dataclasses.dataclass(frozen=True)
class Verdict:
  """Whether a claim reproduces (`REPRODUCES`, `PARTLY`, `DOES_NOT` or `NOT_JUDGED`) and the
  sentence that says why."""
  outcome: str
  sentence: str


def judge(parts: Sequence[Part], *, subject: str, missing: str = "") -> Verdict:
  """The verdict on the parts of a claim: reproduces if every part holds, partly if some do,
  does not if none does; cannot be judged when `missing` says what the run lacks.

  Args:
    parts: the claim's parts, checked on the results.
    subject: where it was checked, e.g. "on synth_soundscapes (3 seeds)".
    missing: what the run lacks to judge the claim ("" when nothing).

  Returns:
    The verdict, with one sentence naming each part and its figures.
  """
  if missing or not parts:
    return Verdict(NOT_JUDGED, f"The claim {NOT_JUDGED} {subject}: "
                               f"{missing or 'the run has none of its figures'}.")
  held = sum(part.holds for part in parts)
  outcome = REPRODUCES if held == len(parts) else DOES_NOT if held == 0 else PARTLY
  return Verdict(outcome, f"The claim {outcome} {subject}: "
                          + "; ".join(part.text for part in parts) + ".")


def number(value: Optional[float]) -> str:
  """A figure as pages print it: 3 decimals, "n/a" for None or NaN."""
  return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _finding(finding: Finding) -> str:
  text = f"- {finding.label}: **{number(finding.value)}**"
  if finding.spread is not None:
    text += f" ± {number(finding.spread)}"
  if finding.published is not None:
    text += f" (published {finding.published:g})"
  return text + (f"; {finding.note}" if finding.note else "")


def findings_block(page: ModuleType, results: Dict[str, Any], heading: str = "##") -> str:
  """The findings block: the claim, the findings and the verdict, as Markdown.

  The same block opens the experiment's report (`results.md`) and the paper's results page.
  """
  verdict = page.verdict(results)
  return "\n".join([
      f"{heading} Findings", "",
      f"The paper's claim ({page.CLAIM.paper}): {page.CLAIM.text}", "",
      *[_finding(finding) for finding in page.findings(results)], "",
      f"**Verdict: {verdict.outcome}.** {verdict.sentence}", ""])


def commit(root: str = ".", ignore: Sequence[str] = ()) -> str:
  """`git rev-parse HEAD` of the checkout at `root`, plus " + uncommitted changes" when its
  tracked files differ from that commit or it has untracked files git does not ignore.

  Changes under the paths in `ignore` (relative to the working directory, or absolute: the page
  being rewritten and its figures, which a resumed or repeated run changes) do not count.
  """
  def git(*args):
    return subprocess.run(["git", "-C", root, *args], check=True, capture_output=True,
                          text=True).stdout.strip()
  try:
    head = git("rev-parse", "HEAD")
    top = os.path.realpath(git("rev-parse", "--show-toplevel"))
    inside = [path for path in map(os.path.realpath, ignore)  # git refuses paths outside
              if os.path.commonpath([path, top]) == top]
    dirty = bool(git("status", "--porcelain", "--", ".",
                     *[f":(exclude){path}" for path in inside]))
  except (OSError, subprocess.CalledProcessError) as error:
    raise RuntimeError(f"results_page.commit: {root!r} is not a git checkout ({error})") from None
  return head + (" + uncommitted changes" if dirty else "")


def load_page(name: str) -> Optional[ModuleType]:
  """The page module of experiment `name` (`soundjax.experiments.<name>.page`), or None if the
  experiment has none yet. Raises AttributeError if it lacks one of `PAGE_ATTRIBUTES`."""
  module_name = f"soundjax.experiments.{name}.page"
  try:
    page = importlib.import_module(module_name)
  except ModuleNotFoundError as error:
    if error.name in (module_name, f"soundjax.experiments.{name}"):
      return None
    raise
  lacking = [attribute for attribute in PAGE_ATTRIBUTES if not hasattr(page, attribute)]
  if lacking:
    raise AttributeError(f"{module_name} lacks {lacking} (see soundjax.experiments.results_page)")
  return page


def read_results(workdir: str) -> Dict[str, Any]:
  """The `results.json` of a run."""
  path = os.path.join(workdir, "results.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"No {path}: run the experiment with --workdir={workdir} first.")
  with open(path) as file:
    return json.load(file)


def copy_figure(source: str, target: str, max_width: int = MAX_FIGURE_WIDTH) -> None:
  """Copies a PNG, scaled down to at most `max_width` pixels wide, as an optimised PNG of 256
  colours (a colormapped spectrogram keeps its look at a third of the size or less)."""
  with Image.open(source) as image:
    if image.width > max_width:
      image = image.resize((max_width, round(image.height * max_width / image.width)),
                           Image.LANCZOS)
    image.convert("RGB").quantize(colors=256).save(target, optimize=True)


def page_markdown(page: ModuleType, results: Dict[str, Any], *, figures: Sequence[tuple],
                  command: str, revision: str) -> str:
  """The page: title, findings block (claim, findings, verdict), tables, figures, provenance.

  Args:
    page: the paper's page module.
    results: the run's `results.json`.
    figures: (path relative to the page, caption) of each figure shown.
    command: the command that produced the run.
    revision: the commit it was produced at (`commit()`).
  """
  lines = [f"# {page.TITLE}", "", findings_block(page, results), "## Our figures", ""]
  for table in page.tables(results):
    lines += [table, ""]
  lines += [f"![{caption}]({path})\n" for path, caption in figures]
  lines += [
      "## How this page was made", "",
      f"- Command: `{command}`",
      f"- Wall time: {results['wall_seconds']:.0f} s (the run that wrote `results.json`; a "
      "resumed run counts only its own time)",
      f"- Commit: `{revision}`",
      "- Written from the run's `results.json` by `scripts/results_page.py`; do not edit by "
      "hand.", ""]
  return "\n".join(lines)


def write_page(page: ModuleType, name: str, workdir: str, out: str, *, command: str,
               revision: Optional[str] = None) -> str:
  """Writes `<out>/<name>.md` and its figures (`<out>/<name>/*.png`) from `workdir`'s results.

  Args:
    page: the paper's page module (`load_page`).
    name: the page's name, e.g. "sed" or "sed_urban_sed".
    workdir: the run's output folder (holds `results.json` and the figures).
    out: the folder of the pages, e.g. "docs/results".
    command: the command that produced the run, printed on the page.
    revision: the commit printed on the page (default: `commit()` of the working directory,
      changes to this page and its figures aside).

  Returns:
    The page's path.
  """
  results = read_results(workdir)
  folder = os.path.join(out, name)
  page_path = os.path.join(out, f"{name}.md")
  revision = commit(ignore=(page_path, folder)) if revision is None else revision
  os.makedirs(folder, exist_ok=True)
  for stale in os.listdir(folder):  # Figures of an earlier page that this one may not show.
    if stale.endswith(".png"):
      os.remove(os.path.join(folder, stale))
  shown = []
  for path, caption in page.figures(results):
    target = path.replace("/", "_")
    copy_figure(os.path.join(workdir, path), os.path.join(folder, target))
    shown.append((f"{name}/{target}", caption))
  text = page_markdown(page, results, figures=shown, command=command, revision=revision)
  with open(page_path, "w", encoding="utf-8") as file:
    file.write(text)
  return page_path
