"""All benchmarks, or one: `python scripts/bench.py [frontend|attacks|attribution|pooling|sed]`.

Each prints throughput in examples/s and its ratio to a reference measured in the same run.
"""

import os
import runpy
import sys

SUITES = ("frontend", "attacks", "attribution", "pooling", "sed")


def main(argv) -> None:
  names = argv[1:] or SUITES
  unknown = sorted(set(names) - set(SUITES))
  if unknown:
    sys.exit(f"bench.py: unknown suite(s) {unknown}; choose from {SUITES}.")
  here = os.path.dirname(os.path.abspath(__file__))
  for name in names:
    print(f"== {name} ==", flush=True)
    runpy.run_path(os.path.join(here, f"bench_{name}.py"), run_name="__main__")


if __name__ == "__main__":
  main(sys.argv)
