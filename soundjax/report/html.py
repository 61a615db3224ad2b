"""The HTML page of a workdir: every Markdown file an experiment wrote, with its figures and audio.

`write_html_report(workdir)` gathers the `*.md` files under `workdir` (the quickstart's stage
folders included) into `workdir/report.html`, one section per file. Figures and WAV files are
referenced by relative paths, not embedded, so the page stays small and works from any copy of
the folder. The Markdown is CommonMark with GFM pipe tables, parsed by markdown-it-py; raw HTML in
it is escaped, so a page only ever holds the tags the renderer writes.
"""

import html
import os
import posixpath
import urllib.parse
from typing import Callable, Dict, List, Sequence, Set

from markdown_it import MarkdownIt

REPORT_NAME = "report.html"
IMAGE_EXTENSIONS = (".png",)  # What `soundjax.report` saves.
AUDIO_EXTENSIONS = (".wav",)

Resolve = Callable[[str, bool], str]  # (Markdown link target, is_image) -> href of the page

_STYLE = """
body { font-family: sans-serif; max-width: 80em; margin: 1em auto; padding: 0 1em;
       line-height: 1.4; color: #222; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
.source { color: #777; font-size: 85%; }
/* A block, so that a wide table scrolls on its own, not the page (as GitHub shows them). */
table { display: block; width: max-content; max-width: 100%; overflow-x: auto;
        border-collapse: collapse; margin: 0.5em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
tr:nth-child(even) td { background: #f7f7f7; }
code { background: #f2f2f2; padding: 0 0.2em; }
img { max-width: 100%; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 85%; color: #555; }
"""


# A render rule; markdown-it binds it to its renderer (`self`), whose default it extends.
def _image(self, tokens, idx, options, env):
  """An image links to its full-size file, unless the Markdown already puts it in a link."""
  image = self.image(tokens, idx, options, env)
  in_link = sum(token.nesting for token in tokens[:idx] if token.type.startswith("link_"))
  return image if in_link else f'<a href="{html.escape(tokens[idx].attrGet("src"))}">{image}</a>'


# HTML5 void tags (`<img>`, as `_media` writes them); raw HTML in the Markdown is escaped.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "xhtmlOut": False}).enable("table")
_MARKDOWN.add_render_rule("image", _image)


def markdown_to_html(text: str, resolve: Resolve = lambda target, is_image: target,
                     heading_offset: int = 0) -> str:
  """Converts Markdown (CommonMark and pipe tables) to HTML; raw HTML in `text` is escaped.

  Args:
    text: Markdown, e.g. `#` headings, pipe tables, lists, paragraphs, `**bold**`, `` `code` ``,
      `[links](target)` and `![images](path)`.
    resolve: maps a link or image target (and whether it is an image) to the href to write.
    heading_offset: added to every heading level (capped at 6), to nest the text in a page.

  Returns:
    The HTML fragment.

  Example:
    >>> markdown_to_html("Loss **0.25** for `x < y`")
    '<p>Loss <strong>0.25</strong> for <code>x &lt; y</code></p>\\n'
  """
  tokens = _MARKDOWN.parse(text)
  for token in tokens:
    if token.type in ("heading_open", "heading_close"):
      token.tag = f"h{min(int(token.tag[1:]) + heading_offset, 6)}"
    elif token.type in ("tr_open", "th_close", "td_close"):
      token.block = False  # One table row per line (`<tr><th>a</th><th>b</th></tr>`), not a cell.
    for child in token.children or ():  # The links and images of an inline token.
      if child.type in ("link_open", "image"):
        key = "src" if child.type == "image" else "href"
        child.attrSet(key, resolve(child.attrGet(key), child.type == "image"))
  return _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})


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
  while folder and all(posixpath.dirname(path) != folder for path in markdown_paths):
    folder = posixpath.dirname(folder)
  return next((path for path in markdown_paths if posixpath.dirname(path) == folder),
              markdown_paths[0])


def _media(path: str) -> str:
  href = html.escape(_url(path))
  if path.lower().endswith(AUDIO_EXTENSIONS):
    shown = f'<audio controls preload="none" src="{href}"></audio>'
  else:
    shown = f'<a href="{href}"><img src="{href}" alt="{html.escape(path)}"></a>'
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
                      f'<p class="source">from <a href="{html.escape(_url(path))}">'
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
