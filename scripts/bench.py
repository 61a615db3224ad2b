"""All benchmarks in one table: `python scripts/bench.py [--only NAME ...] [--json out.json]
[--tiny | --full] [--torch-python PYTHON]`.

NAME is a suite (`SUITES`) or one of its groups, `suite/group` (`python scripts/bench_<suite>.py
--help` lists them). Every row is a workload's throughput (examples/s), its ratio to a reference
measured in the same run (interleaved, medians), its compile time, peak memory, XLA's FLOPs per
example and the fraction of this machine's float32 matmul peak it reaches (`benchlib.COLUMNS`).
The default sizes take under 5 minutes on 2 CPU cores; --full runs the published sizes.

Each suite runs in its own process (`scripts/bench_<suite>.py --json ...`): its workloads'
peak memory then holds only its own data and runtime, not what earlier suites left in the
allocator, and a failing suite leaves the others' rows. The matmul peak is measured here before
and after the suites; the better of the two medians divides every row.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

SUITES = ("frontend", "attacks", "attribution", "pooling", "sed")
HERE = Path(__file__).resolve().parent


def _selection(parser: argparse.ArgumentParser, names) -> dict:
  """`{suite: [groups] or None (all)}` in `SUITES` order, from --only's names."""
  groups = {}
  for name in names:
    suite, _, group = name.partition("/")
    if suite not in SUITES:
      parser.error(f"--only: unknown suite {suite!r} in {name!r}; choose from {SUITES}")
    if not group:
      groups[suite] = None
    elif groups.get(suite, []) is not None:
      groups.setdefault(suite, []).append(name)
  return {suite: groups[suite] for suite in SUITES if suite in groups}


def run_suite(suite: str, groups, args, peak: float, folder: str) -> list:
  """The rows of one suite's process; raises RuntimeError (with its output) when it fails."""
  path = os.path.join(folder, f"{suite}.json")
  command = [sys.executable, str(HERE / f"bench_{suite}.py"), f"--json={path}",
             f"--matmul-peak={peak}"]
  command += [f"--{args.size}"] if args.size != "default" else []
  command += ["--only", *groups] if groups else []
  command += [f"--torch-python={args.torch_python}"] if suite == "attacks" and args.torch_python \
      else []
  result = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f"{suite} exited with {result.returncode}:\n{result.stdout[-3000:]}")
  with open(path) as f:
    return json.load(f)["rows"]


def main(argv) -> None:
  start = time.perf_counter()
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  benchlib.size_arguments(parser)
  parser.add_argument("--only", nargs="+", metavar="NAME",
                      help=f"suites {SUITES} or their groups (suite/group) to run")
  parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                      help="interpreter with torch for the attacks' reference ($TORCH_PYTHON)")
  args = parser.parse_args(argv[1:])
  selection = _selection(parser, args.only or SUITES)
  peak = benchlib.matmul_peak(benchlib.MATMUL_N[args.size])
  rows, failed = [], []
  with tempfile.TemporaryDirectory() as folder:
    for suite, groups in selection.items():
      try:
        rows += run_suite(suite, groups, args, peak, folder)
      except RuntimeError as error:
        print(error, file=sys.stderr)
        failed.append(suite)
  peak = max(peak, benchlib.matmul_peak(benchlib.MATMUL_N[args.size]))
  rows = benchlib.with_fraction_of_peak(rows, peak)
  print(benchlib.format_table(rows, peak, args.size))
  wall = time.perf_counter() - start
  print(f"wall time {wall:.0f} s")
  if args.json:
    benchlib.write_json(args.json, rows, peak, args.size, wall)
  if failed:
    sys.exit(f"bench.py: suite(s) {failed} failed (output above)")


if __name__ == "__main__":
  main(sys.argv)
