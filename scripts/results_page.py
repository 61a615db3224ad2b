"""A paper's results page from a finished run: `python scripts/results_page.py --experiment sed
--workdir runs/reproduce_sed [--out docs/results] [--name sed] --command "..."`.

Writes `<out>/<name>.md` and its figures (`<out>/<name>/*.png`, scaled down) from
`<workdir>/results.json`, laid out by `soundjax.experiments.results_page` with the experiment's
page module (`soundjax/experiments/<experiment>/page.py`). The page names the command, the run's
wall time and the commit (this checkout's, or `--revision`). `scripts/reproduce_*.sh` call it
after their run.
"""

import argparse
import sys

from soundjax.experiments import results_page


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--experiment", required=True,
                      help="a package of soundjax/experiments, e.g. occlusion, sed, "
                           "vocal_percussion, adversarial")
  parser.add_argument("--workdir", required=True, help="the run's folder (holds results.json)")
  parser.add_argument("--out", default="docs/results", help="folder of the pages")
  parser.add_argument("--name", help="the page's name (default: the experiment's)")
  parser.add_argument("--command", required=True, help="the command that produced the run")
  parser.add_argument("--revision",
                      help="the commit the run was produced at, when not this checkout's HEAD "
                           "(default: HEAD, plus ' + uncommitted changes' on a dirty tree)")
  args = parser.parse_args(argv)
  page = results_page.load_page(args.experiment)
  if page is None:
    print(f"results_page: error: soundjax.experiments.{args.experiment} has no page module "
          "(page.py): no results page written.", file=sys.stderr)
    return 2
  try:
    path = results_page.write_page(page, args.name or args.experiment, args.workdir, args.out,
                                   command=args.command, revision=args.revision)
  except FileNotFoundError as error:
    print(f"results_page: error: {error}", file=sys.stderr)
    return 1
  print(f"Wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
