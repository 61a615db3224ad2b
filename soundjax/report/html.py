"""The HTML page of a workdir: every Markdown file an experiment wrote, with its figures and audio.

`write_html_report(workdir)` gathers the `*.md` files under `workdir` (the quickstart's stage
folders included) into `workdir/report.html`, one section per file. Figures and WAV files are
referenced by relative paths, not embedded, so the page stays small and works from any copy of
the folder. Only the Markdown the experiments write is converted: ATX headings, pipe tables,
bullet lists, paragraphs and inline bold, code, links and images.
"""

import html
import os
import posixpath
import re
import urllib.parse
from typing import Callable, Dict, List, Sequence, Set

REPORT_NAME = "report.html"
IMAGE_EXTENSIONS = (".png",)  # What `soundjax.report` saves.
AUDIO_EXTENSIONS = (".wav",)

_HEADING = re.compile(r"(#{1,6})\s+(.*?)(\s+#+)?\s*$")
_BULLET = re.compile(r"[-*+]\s+(.*)$")
_DELIMITER = re.compile(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
# Leftmost match wins, so an image (`![`) is taken before the link its `[` would also start.
_INLINE = re.compile(r"`([^`]+)`|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)"
                     r"|\*\*(.+?)\*\*")

Resolve = Callable[[str, bool], str]  # (Markdown link target, is_image) -> href of the page

_STYLE = """
body { font-family: sans-serif; max-width: 80em; margin: 1em auto; padding: 0 1em;
       line-height: 1.4; color: #222; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
.source { color: #777; font-size: 85%; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
tr:nth-child(even) td { background: #f7f7f7; }
code { background: #f2f2f2; padding: 0 0.2em; }
img { max-width: 100%; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 85%; color: #555; }
"""


def _attribute(value: str) -> str:
  return html.escape(value, quote=True)


def _inline(text: str, resolve: Resolve) -> str:
  """Escapes `text` and converts its code spans, images, links and bold parts."""
  parts, end = [], 0
  for match in _INLINE.finditer(text):
    parts.append(html.escape(text[end:match.start()]))
    code, alt, source, label, target, bold = match.groups()
    if code is not None:
      parts.append(f"<code>{html.escape(code)}</code>")
    elif source is not None:
      href = _attribute(resolve(source, True))
      parts.append(f'<a href="{href}"><img src="{href}" alt="{_attribute(alt)}"></a>')
    elif target is not None:
      parts.append(f'<a href="{_attribute(resolve(target, False))}">'
                   f"{_inline(label, resolve)}</a>")
    else:
      parts.append(f"<strong>{_inline(bold, resolve)}</strong>")
    end = match.end()
  parts.append(html.escape(text[end:]))
  return "".join(parts)


def _cells(row: str) -> List[str]:
  row = row.strip()
  row = row[1:] if row.startswith("|") else row
  row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
  return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(row)]


def _starts_table(lines: Sequence[str], i: int) -> bool:
  return "|" in lines[i] and i + 1 < len(lines) and bool(_DELIMITER.match(lines[i + 1]))


def _table(lines: Sequence[str], resolve: Resolve) -> str:
  """A header row and body rows; rows are padded or cut to the header's width, as in GFM."""
  header = _cells(lines[0])
  def row(cells, tag):
    cells = (cells + [""] * len(header))[:len(header)]
    return "<tr>" + "".join(f"<{tag}>{_inline(c, resolve)}</{tag}>" for c in cells) + "</tr>"
  rows = [f'<div class="table"><table>\n<thead>{row(header, "th")}</thead>\n<tbody>']
  rows += [row(_cells(line), "td") for line in lines[2:]]
  return "\n".join(rows) + "\n</tbody>\n</table></div>"


def markdown_to_html(text: str, resolve: Resolve = lambda target, is_image: target,
                     heading_offset: int = 0) -> str:
  """Converts the Markdown subset that soundjax experiments write to escaped HTML.

  Args:
    text: Markdown: `#` headings, pipe tables, `-` bullet lists, paragraphs; inline `**bold**`,
      `` `code` ``, `[links](target)` and `![images](path)`. Anything else is kept as text.
    resolve: maps a link or image target (and whether it is an image) to the href to write.
    heading_offset: added to every heading level (capped at 6), to nest the text in a page.

  Returns:
    The HTML fragment.

  Example:
    >>> markdown_to_html("Loss **0.25** for `x < y`")
    '<p>Loss <strong>0.25</strong> for <code>x &lt; y</code></p>'
  """
  lines = [line.strip() for line in text.splitlines()]
  blocks, i = [], 0
  while i < len(lines):
    heading = _HEADING.match(lines[i])
    if not lines[i]:
      i += 1
    elif heading:
      level = min(len(heading.group(1)) + heading_offset, 6)
      blocks.append(f"<h{level}>{_inline(heading.group(2), resolve)}</h{level}>")
      i += 1
    elif _starts_table(lines, i):
      end = i + 2
      while end < len(lines) and "|" in lines[end]:
        end += 1
      blocks.append(_table(lines[i:end], resolve))
      i = end
    elif _BULLET.match(lines[i]):
      items = []
      while i < len(lines) and _BULLET.match(lines[i]):
        items.append(f"<li>{_inline(_BULLET.match(lines[i]).group(1), resolve)}</li>")
        i += 1
      blocks.append("<ul>\n" + "\n".join(items) + "\n</ul>")
    else:
      end = i + 1
      while end < len(lines) and lines[end] and not (
          _HEADING.match(lines[end]) or _BULLET.match(lines[end]) or _starts_table(lines, end)):
        end += 1
      blocks.append("<p>" + _inline("\n".join(lines[i:end]), resolve) + "</p>")
      i = end
  return "\n".join(blocks)


def _files(workdir: str) -> Dict[str, List[str]]:
  """Workdir-relative ('/'-separated) paths of the Markdown and media files, by kind."""
  found = {"markdown": [], "media": []}
  for folder, subfolders, names in os.walk(workdir):
    subfolders.sort()
    for name in sorted(names):
      path = os.path.relpath(os.path.join(folder, name), workdir).replace(os.sep, "/")
      extension = os.path.splitext(name)[1].lower()
      if extension == ".md":
        found["markdown"].append(path)
      elif extension in IMAGE_EXTENSIONS + AUDIO_EXTENSIONS:
        found["media"].append(path)
  # Each folder's files before its subfolders', so the quickstart's summary comes first.
  found["markdown"].sort(key=lambda path: (path.split("/")[:-1], path))
  return found


def _url(path: str) -> str:
  return urllib.parse.quote(path, safe="/")


def _resolver(markdown_path: str, anchors: Dict[str, str], shown: Set[str]) -> Resolve:
  """Resolves targets relative to the Markdown file; links to a reported Markdown file become
  links to its section, and every image shown inline is added to `shown`."""
  def resolve(target: str, is_image: bool) -> str:
    if urllib.parse.urlsplit(target).scheme or target.startswith(("#", "/")):
      return target
    path = posixpath.normpath(posixpath.join(posixpath.dirname(markdown_path),
                                             urllib.parse.unquote(target)))
    if path in anchors:
      return "#" + anchors[path]
    if is_image:
      shown.add(path)
    return _url(path)
  return resolve


def _owner(media_path: str, markdown_paths: Sequence[str]) -> str:
  """The first Markdown file of the nearest folder above `media_path` that has one."""
  folder = posixpath.dirname(media_path)
  while True:
    for path in markdown_paths:
      if posixpath.dirname(path) == folder:
        return path
    if not folder:
      return markdown_paths[0]
    folder = posixpath.dirname(folder)


def _media(path: str) -> str:
  href = _attribute(_url(path))
  if path.lower().endswith(AUDIO_EXTENSIONS):
    shown = f'<audio controls preload="none" src="{href}"></audio>'
  else:
    shown = f'<a href="{href}"><img src="{href}" alt="{_attribute(path)}"></a>'
  return f"<figure>{shown}<figcaption>{html.escape(path)}</figcaption></figure>"


def write_html_report(workdir: str) -> str:
  """Writes `workdir/report.html`: every Markdown file under `workdir` with its figures and audio.

  Images a Markdown file shows stay where it shows them; the other figures and WAV files follow
  the first section of the nearest folder above them.

  Args:
    workdir: an experiment's output folder.

  Returns:
    The path of the page.

  Raises:
    FileNotFoundError: if `workdir` does not exist or holds no Markdown file.

  Example:
    >>> write_html_report("runs/quickstart")
    'runs/quickstart/report.html'
  """
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"No workdir {workdir!r}: the folder does not exist.")
  files = _files(workdir)
  markdown_paths = files["markdown"]
  if not markdown_paths:
    raise FileNotFoundError(f"No results in {workdir!r}: no Markdown (*.md) file under it. Run "
                            "an experiment there first (soundjax --config=... --workdir=...).")
  anchors = {path: f"section-{index}" for index, path in enumerate(markdown_paths)}
  shown, sections = set(), {}
  for path in markdown_paths:
    with open(os.path.join(workdir, path), encoding="utf-8") as file:
      body = markdown_to_html(file.read(), _resolver(path, anchors, shown), heading_offset=1)
    sections[path] = [f'<section id="{anchors[path]}">',
                      f'<p class="source">from <a href="{_attribute(_url(path))}">'
                      f"{html.escape(path)}</a></p>", body]
  for media_path in files["media"]:
    if media_path not in shown:
      section = sections[_owner(media_path, markdown_paths)]
      if not section[-1].startswith("<figure>"):
        section.append("<h3>Figures and audio</h3>")
      section.append(_media(media_path))
  title = html.escape(f"soundjax report: {os.path.basename(os.path.abspath(workdir))}")
  contents = "\n".join(f'<li><a href="#{anchors[path]}">{html.escape(path)}</a></li>'
                       for path in markdown_paths)
  page = [f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
          f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
          f"<nav><ul>\n{contents}\n</ul></nav>"]
  page += ["\n".join(section) + "\n</section>" for section in sections.values()]
  path = os.path.join(workdir, REPORT_NAME)
  with open(path, "w", encoding="utf-8") as file:
    file.write("\n".join(page) + "\n</body>\n</html>\n")
  return path
