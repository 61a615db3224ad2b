"""The results-page frame: the verdict rule, the findings block, the provenance lines, the commit
and figure copies; and the helpers the experiments' page tests use (`write_and_parse`,
`rewritten`) to check every printed figure against the `results.json` it came from.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import types

import matplotlib
import numpy as np
import pytest
from PIL import Image

from soundjax.experiments import results_page
from soundjax.experiments.results_page import Finding, Part
from tests.toys import REPO

# A findings line: "- label: **0.123** ± 0.010 (published 0.2); note".
_FINDING = re.compile(r"^- (?P<label>[^:\n]+): \*\*(?P<value>[-0-9.]+|n/a)\*\*"
                      r"(?: ± (?P<spread>[-0-9.]+|n/a))?(?: \(published (?P<published>[0-9.]+)\))?"
                      r"(?:; (?P<note>.*))?$", re.MULTILINE)
_VERDICT = re.compile(r"^\*\*Verdict: (?P<outcome>[a-z ]+)\.\*\* (?P<sentence>.+)$", re.MULTILINE)


def _number(text):
  return None if text in (None, "n/a") else float(text)


def parse_page(text):
  """Findings by label -> (value, spread, published, note), the verdict's outcome and sentence,
  the table rows (lists of cells) and the figure links of a page or findings block."""
  findings = {m["label"]: (_number(m["value"]), _number(m["spread"]), _number(m["published"]),
                           m["note"] or "") for m in _FINDING.finditer(text)}
  verdict = _VERDICT.search(text)
  rows = [[cell.strip() for cell in line.strip("|").split("|")]
          for line in text.splitlines() if line.startswith("| ") and "---|" not in line]
  links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
  return types.SimpleNamespace(findings=findings, outcome=verdict["outcome"] if verdict else None,
                               sentence=verdict["sentence"] if verdict else None, rows=rows,
                               links=links)


def write_and_parse(page, name, workdir, out):
  """Writes the page of `workdir` into `out`; returns (parsed page, text, results.json)."""
  path = results_page.write_page(page, name, workdir, out, command="cmd --x", revision="abc123")
  with open(path, encoding="utf-8") as file:
    text = file.read()
  with open(os.path.join(workdir, "results.json")) as file:
    results = json.load(file)
  parsed = parse_page(text)
  for link in parsed.links:  # Every figure is copied next to the page, small.
    with Image.open(os.path.join(out, link)) as image:
      assert image.width <= results_page.MAX_FIGURE_WIDTH
  assert len(parsed.links) == len(page.figures(results)) > 0
  assert f"Wall time: {results['wall_seconds']:.0f} s" in text
  assert "Command: `cmd --x`" in text and "Commit: `abc123`" in text
  return parsed, text, results


def rewritten(workdir, target, edit):
  """A copy of a run's outputs (no models) at `target` whose `results.json` went through
  `edit(results)`; returns `target`."""
  shutil.copytree(workdir, target, ignore=shutil.ignore_patterns("models", "model_*",
                                                                   "embeddings", "predictions"))
  path = os.path.join(target, "results.json")
  with open(path) as file:
    results = json.load(file)
  edit(results)
  with open(path, "w") as file:
    json.dump(results, file)
  return target


def assert_outcomes(page, name, workdir, tmp_path, cases, check_page):
  """For each `(edit, outcome)` of `cases`: the page of a copy of the run whose results.json went
  through `edit` (`rewritten`) passes `check_page(parsed, results)` and judges `outcome`."""
  for index, (edit, outcome) in enumerate(cases):
    folder = f"outcome_{index}"
    moved = rewritten(workdir, str(tmp_path / folder), edit)
    parsed, _, results = write_and_parse(page, name, moved, str(tmp_path / "docs" / folder))
    check_page(parsed, results)
    assert parsed.outcome == outcome, (index, parsed.sentence)


def assert_report_opens_with_findings(page, workdir, report_name):
  """The experiment's report opens (after its title) with the page's findings block."""
  with open(os.path.join(workdir, "results.json")) as file:
    results = json.load(file)
  with open(os.path.join(workdir, report_name), encoding="utf-8") as file:
    text = file.read()
  title, rest = text.split("\n", 1)
  assert title.startswith("# ")
  assert rest.lstrip("\n").startswith(results_page.findings_block(page, results))


@pytest.mark.parametrize("holds, outcome", [
    ((True, True), results_page.REPRODUCES), ((True, False), results_page.PARTLY),
    ((False, True), results_page.PARTLY), ((False, False), results_page.DOES_NOT),
    ((True,), results_page.REPRODUCES), ((False,), results_page.DOES_NOT)])
def test_judge_counts_the_parts_that_hold(holds, outcome):
  parts = [Part(h, f"part {i} {'holds' if h else 'fails'}") for i, h in enumerate(holds)]
  verdict = results_page.judge(parts, subject="on toy data")
  assert verdict.outcome == outcome
  assert verdict.sentence == (f"The claim {outcome} on toy data: "
                              + "; ".join(p.text for p in parts) + ".")


def test_judge_without_parts_or_with_something_missing_cannot_judge():
  assert results_page.judge([], subject="here").outcome == results_page.NOT_JUDGED
  verdict = results_page.judge([Part(True, "x")], subject="here", missing="no baseline")
  assert verdict.outcome == results_page.NOT_JUDGED and "no baseline" in verdict.sentence


def _toy_page(value):
  return types.SimpleNamespace(
      TITLE="Toy", CLAIM=results_page.Claim("Paper 0", "x beats y (published 0.9)."),
      findings=lambda results: [Finding("x", results["x"], 0.01, 0.9, note="2 seeds"),
                                Finding("y", None)],
      verdict=lambda results: results_page.judge([Part(results["x"] > 0.5, "x > 0.5")],
                                                 subject="on toys"),
      tables=lambda results: ["| a | b |\n|---|---|\n| 1 | 2 |"],
      figures=lambda results: [("figures/wide.png", "a wide figure")])


def test_findings_block_prints_each_figure_and_the_verdict():
  parsed = parse_page(results_page.findings_block(_toy_page(0.5), {"x": 0.75}))
  assert parsed.findings == {"x": (0.75, 0.01, 0.9, "2 seeds"), "y": (None, None, None, "")}
  assert parsed.outcome == results_page.REPRODUCES
  parsed = parse_page(results_page.findings_block(_toy_page(0.5), {"x": 0.25}))
  assert parsed.findings["x"][0] == 0.25 and parsed.outcome == results_page.DOES_NOT


def test_page_has_the_run_wall_time_commit_and_small_figure_copies(tmp_path):
  workdir = tmp_path / "run"
  (workdir / "figures").mkdir(parents=True)
  Image.new("RGB", (2000, 500), "white").save(workdir / "figures" / "wide.png")
  (workdir / "results.json").write_text(json.dumps({"x": 0.75, "wall_seconds": 1234.4}))
  out = tmp_path / "docs"
  os.makedirs(out / "toy")
  Image.new("RGB", (10, 10)).save(out / "toy" / "stale.png")  # Of an earlier page: removed.
  parsed, text, _ = write_and_parse(_toy_page(0.5), "toy", str(workdir), str(out))
  assert text.startswith("# Toy\n\n## Findings")
  assert parsed.links == ["toy/figures_wide.png"]
  assert sorted(os.listdir(out / "toy")) == ["figures_wide.png"]
  with Image.open(out / "toy" / "figures_wide.png") as image:
    assert image.size == (results_page.MAX_FIGURE_WIDTH, 225)
  assert "Wall time: 1234 s" in text and ["1", "2"] in parsed.rows


def test_figure_copies_are_256_colour_pngs_that_keep_a_colormapped_image(tmp_path):
  values = np.random.default_rng(0).random((120, 300)).cumsum(axis=1) / 150.0
  rgb = (matplotlib.colormaps["magma"](values % 1.0)[..., :3] * 255).astype(np.uint8)
  Image.fromarray(rgb).save(tmp_path / "source.png")
  results_page.copy_figure(str(tmp_path / "source.png"), str(tmp_path / "copy.png"))
  with Image.open(tmp_path / "copy.png") as image:
    assert image.mode == "P" and image.size == (300, 120)
    copied = np.asarray(image.convert("RGB"), np.float64)
  assert np.mean(np.abs(copied - rgb)) < 3.0  # of 255
  assert os.path.getsize(tmp_path / "copy.png") < os.path.getsize(tmp_path / "source.png")


def _committed_repo(root, files):
  """A git repository at `root` with `files` ({relative path: text}) committed; its HEAD."""
  def git(*args):
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout.strip()
  git("init", "-q")
  for name, text in files.items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
  git("add", ".")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "files")
  return git("rev-parse", "HEAD")


def test_commit_names_head_and_says_when_the_tree_is_dirty(tmp_path):
  head = _committed_repo(tmp_path, {"a.txt": "a"})
  assert results_page.commit(str(tmp_path)) == head
  (tmp_path / "a.txt").write_text("b")
  assert results_page.commit(str(tmp_path)) == head + " + uncommitted changes"
  with pytest.raises(RuntimeError, match="not a git checkout"):
    results_page.commit(str(tmp_path / "nowhere"))


def test_commit_ignores_the_page_being_rewritten_and_its_figures(tmp_path):
  head = _committed_repo(tmp_path, {"docs/results/sed.md": "old page",
                                    "docs/results/vp.md": "another page"})
  pages = tmp_path / "docs" / "results"
  ignore = (str(pages / "sed.md"), str(pages / "sed"))
  (pages / "sed.md").write_text("new page")
  (pages / "sed").mkdir()
  (pages / "sed" / "figure.png").write_bytes(b"png")
  assert results_page.commit(str(tmp_path)) == head + " + uncommitted changes"
  assert results_page.commit(str(tmp_path), ignore=ignore) == head
  # Pages written outside the checkout change nothing in it.
  assert results_page.commit(str(tmp_path), ignore=(str(tmp_path.parent / "elsewhere"),)) == (
      head + " + uncommitted changes")
  (pages / "vp.md").write_text("changed too")  # Not the page being written: it counts.
  assert results_page.commit(str(tmp_path), ignore=ignore) == head + " + uncommitted changes"


def test_load_page_finds_each_paper_page_and_none_where_there_is_none():
  for name in ("adversarial", "occlusion", "sed", "vocal_percussion"):
    page = results_page.load_page(name)
    assert all(hasattr(page, a) for a in results_page.PAGE_ATTRIBUTES)
  assert results_page.load_page("quickstart") is None
  assert results_page.load_page("no_such_experiment") is None


def test_the_script_fails_on_an_experiment_without_a_page_or_results(tmp_path, capsys):
  spec = importlib.util.spec_from_file_location("results_page_script",
                                                os.path.join(REPO, "scripts", "results_page.py"))
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  args = ["--experiment", "quickstart", "--workdir", str(tmp_path), "--command", "x"]
  assert script.main(args) == 2
  assert "no page module" in capsys.readouterr().err
  assert script.main(["--experiment", "sed"] + args[2:]) == 1
  assert "results.json" in capsys.readouterr().err


def test_number_prints_three_decimals_or_na():
  assert [results_page.number(v) for v in (0.12345, None, float("nan"), np.float64(1))] == [
      "0.123", "n/a", "n/a", "1.000"]
