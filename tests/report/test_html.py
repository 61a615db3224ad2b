"""The HTML report of a workdir: sections, escaping, relative figure/audio paths, well-formed HTML,
and the `python -m soundjax.report` entry point (test_quickstart.py checks a real run's page)."""

import html.parser
import os

import hypothesis
import hypothesis.strategies as st
import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile

from soundjax import report
from soundjax.report import __main__ as report_cli
from soundjax.report.html import markdown_to_html

VOID = {"meta", "img", "br", "hr", "link", "source"}
TOP = """# Results <draft>

Scores from `results.json` & co; the details are in [the stage](stage/results.md).

| model | score | note |
|---|---|---|
| vgg | 0.500 | a < b |
| crnn | **0.750** |

- first point
- second *point*

![curve](figures/curve.png)
"""


class _Checker(html.parser.HTMLParser):
  """Records tags, attributes and text; fails on a close tag that does not match the open one."""

  def __init__(self):
    super().__init__(convert_charrefs=True)
    self.stack, self.tags, self.attributes, self.text = [], [], [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.attributes.append((tag, dict(attrs)))
    if tag not in VOID:
      self.stack.append(tag)

  def handle_endtag(self, tag):
    assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"

  def handle_data(self, data):
    self.text.append(data)


def parse(page: str) -> _Checker:
  checker = _Checker()
  checker.feed(page)
  checker.close()
  assert not checker.stack, f"tags left open: {checker.stack}"
  return checker


def sources(checker: _Checker, tag: str):
  return [attrs["src"] for name, attrs in checker.attributes if name == tag]


@pytest.fixture
def workdir(tmp_path):
  (tmp_path / "figures").mkdir()
  (tmp_path / "wav").mkdir()
  (tmp_path / "stage").mkdir()
  (tmp_path / "results.md").write_text(TOP)
  (tmp_path / "stage" / "results.md").write_text("# Stage\n\nOne stage.\n")
  image = np.linspace(0.0, 1.0, 12).reshape(3, 4)
  for path in ("figures/curve.png", "figures/extra.png", "stage/heat map.png"):
    plt.imsave(tmp_path / path, image)
  soundfile.write(tmp_path / "wav" / "clip 1.wav", np.zeros(80, np.float32), 8000)
  (tmp_path / "results.json").write_text("{}")
  return tmp_path


def test_sections_follow_the_markdown_files_in_order(workdir):
  page = open(report.write_html_report(str(workdir))).read()
  assert page.index('id="section-0"') < page.index("Results &lt;draft&gt;") < page.index(
      'id="section-1"') < page.index("<h2>Stage</h2>")
  assert '<a href="#section-0">results.md</a>' in page
  assert '<a href="#section-1">stage/results.md</a>' in page
  # A link to a reported Markdown file jumps to its section.
  assert '<a href="#section-1">the stage</a>' in page


def test_tables_lists_and_inline_text_are_converted_and_escaped(workdir):
  page = open(report.write_html_report(str(workdir))).read()
  assert "<tr><th>model</th><th>score</th><th>note</th></tr>" in page
  assert "<tr><td>vgg</td><td>0.500</td><td>a &lt; b</td></tr>" in page
  assert "<tr><td>crnn</td><td><strong>0.750</strong></td><td></td></tr>" in page
  assert "<code>results.json</code> &amp; co" in page
  assert "<li>first point</li>\n<li>second <em>point</em></li>" in page
  assert "<draft>" not in page and "a < b" not in page


def test_figures_and_audio_have_paths_relative_to_the_page(workdir):
  checker = parse(open(report.write_html_report(str(workdir))).read())
  # The shown curve stays where the Markdown puts it, once; the rest follow their section.
  assert sources(checker, "img") == ["figures/curve.png", "figures/extra.png",
                                     "stage/heat%20map.png"]
  assert sources(checker, "audio") == ["wav/clip%201.wav"]
  for source in sources(checker, "img") + sources(checker, "audio"):
    assert os.path.isfile(workdir / source.replace("%20", " "))
  text = "".join(checker.text)
  assert text.index("wav/clip 1.wav") < text.index("Stage") < text.index("stage/heat map.png")


@hypothesis.given(st.text(alphabet="ab <>&\"'|-*#`![]()\n", max_size=80))
@hypothesis.settings(max_examples=20, deadline=None)
def test_any_text_converts_to_well_formed_html_with_only_known_tags(text):
  checker = parse(markdown_to_html(text))
  # What CommonMark and pipe tables make of this alphabet; none of the `<` a tag of the text's.
  allowed = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "li", "blockquote", "pre", "hr", "br",
             "table", "thead", "tbody", "tr", "th", "td", "strong", "em", "code", "a", "img"}
  assert set(checker.tags) <= allowed


def test_links_and_images_in_a_subfolder_are_made_relative_to_the_page(tmp_path):
  (tmp_path / "stage").mkdir()
  (tmp_path / "summary.md").write_text("# Top\n")
  (tmp_path / "stage" / "results.md").write_text(
      "[![linked](<heat map.png>)](../summary.md) ![again](./heat%20map.png)\n"
      "[the clip](../clip.wav), [the web](https://example.org/a.md)\n")
  plt.imsave(tmp_path / "stage" / "heat map.png", np.zeros((2, 2)))
  soundfile.write(tmp_path / "clip.wav", np.zeros(80, np.float32), 8000)
  checker = parse(open(report.write_html_report(str(tmp_path))).read())
  hrefs = [attrs["href"] for name, attrs in checker.attributes if name == "a"]
  # Contents, the two "from" links, then the stage's own: a linked image keeps its one link.
  assert hrefs == ["#section-0", "#section-1", "summary.md", "stage/results.md", "#section-0",
                   "stage/heat%20map.png", "clip.wav", "https://example.org/a.md"]
  # Both images are shown where the Markdown puts them; the linked clip plays in the appendix.
  assert sources(checker, "img") == ["stage/heat%20map.png"] * 2
  assert sources(checker, "audio") == ["clip.wav"]


def test_a_table_cell_keeps_its_inline_code_and_link():
  text = "| name | where |\n|---|:-:|\n| `a \\| b` | [**here**](x.md) |\n\n# Next"
  fragment = markdown_to_html(text, lambda target, is_image: "page#" + target, heading_offset=2)
  assert ('<tr><td><code>a | b</code></td><td style="text-align:center">'
          '<a href="page#x.md"><strong>here</strong></a></td></tr>') in fragment
  assert fragment.endswith("</table>\n<h3>Next</h3>\n")


def test_raw_html_in_the_markdown_is_escaped_not_run():
  fragment = markdown_to_html('<script>alert("x")</script>\n\nA <b onclick="f()">b</b> '
                              '[js](javascript:alert(1))')
  assert set(parse(fragment).tags) == {"p"}
  assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in fragment
  assert "&lt;b onclick=&quot;f()&quot;&gt;b&lt;/b&gt;" in fragment


def test_workdir_without_results_raises_naming_it(tmp_path):
  plt.imsave(tmp_path / "lonely.png", np.zeros((2, 2)))
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    report.write_html_report(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="missing"):
    report.write_html_report(str(tmp_path / "missing"))
  assert not os.path.exists(tmp_path / "report.html")


def test_module_entry_point_rebuilds_the_page(workdir, capsys):
  report_cli.main(["soundjax.report", str(workdir)])
  assert capsys.readouterr().out.strip() == str(workdir / "report.html")
  with pytest.raises(SystemExit, match="No results"):
    report_cli.main(["soundjax.report", str(workdir / "wav")])
  with pytest.raises(SystemExit, match="usage"):
    report_cli.main(["soundjax.report"])
