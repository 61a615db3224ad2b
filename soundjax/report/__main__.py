"""`python -m soundjax.report WORKDIR`: (re)writes `WORKDIR/report.html` and prints its path."""

import sys
from typing import Sequence

from soundjax.report.html import write_html_report


def main(argv: Sequence[str]) -> None:
  """`python -m soundjax.report WORKDIR`: (re)writes `WORKDIR/report.html`, prints its path."""
  if len(argv) != 2:
    sys.exit("usage: python -m soundjax.report WORKDIR")
  try:
    print(write_html_report(argv[1]))
  except FileNotFoundError as error:
    sys.exit(f"soundjax.report: error: {error}")


if __name__ == "__main__":
  main(sys.argv)
