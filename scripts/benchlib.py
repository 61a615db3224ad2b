"""Shared by the benchmark scripts: interleaved timing with medians, XLA's compile time, FLOPs
and memory of a compiled workload, the process's peak memory, the machine's matmul peak, and the
one row format (`COLUMNS`) that every suite returns and `bench.py` prints as one table.

A suite script defines `groups(size, args) -> {name: thunk}`, each thunk returning rows (built
by `compare`), and calls `run_suite`: it can run on its own (`python scripts/bench_x.py [--only
GROUP ...] [--tiny | --full] [--json out.json]`) or as a child of `bench.py`.
"""

import argparse
import dataclasses
import functools
import json
import re
import resource
import statistics
import sys
import textwrap
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp

# (JSON key, table header): the columns of every row, in table order. A row may also carry a
# "note" (printed under the table).
COLUMNS = (
    ("workload", "workload"),
    ("examples_per_s", "examples/s"),
    ("reference", "reference"),
    ("reference_examples_per_s", "reference examples/s"),
    ("ratio", "ratio"),
    ("compile_s", "compile s"),
    ("peak_mib", "peak MiB"),
    ("xla_mib", "XLA MiB"),
    ("flops_per_example", "FLOPs/example"),
    ("fraction_of_peak", "fraction of matmul peak"),
)
# tiny: seconds, for tests; default: minutes on 2 CPU cores; full: the published sizes.
SIZES = ("tiny", "default", "full")
REPEATS = {"tiny": 2, "default": 3, "full": 5}  # interleaved rounds; medians over them
MATMUL_N = {"tiny": 256, "default": 2048, "full": 2048}
MEMORY_LIMIT_MIB = 4096
LEGEND = (
    "ratio: examples/s over the reference's (>1: faster). peak MiB: the process's peak resident "
    "memory while the workload compiles and runs once (its data and the runtime included); XLA "
    "MiB: arguments + outputs + temporaries of the compiled program (memory_analysis). "
    "FLOPs/example: XLA's cost_analysis; '-' where the workload is not one XLA program or its "
    "program loops over floating-point work (XLA counts a loop body once). Fraction of peak: "
    "FLOPs/example x examples/s over the float32 matmul FLOP/s measured in the same run.")


@dataclasses.dataclass(frozen=True)
class Workload:
  """A call to time: `fn(*args)`, on `examples` examples.

  A jitted `fn` is compiled ahead of time (timed: compile s) and its compiled program is what
  runs, so the FLOPs and memory figures are of the timed program. With `threads_state`, `fn`
  returns `(state, ...)` for its first argument (a train step, state donated): each call passes
  on the state of the call before. Where `fn`'s program loops, `flops_fn` (jitted, same
  arguments) is a loop-free program of the same arithmetic whose FLOPs stand for it. `check`
  takes the output of the first call, once the reference has run too, and returns the row's
  note (raising when the output is wrong). `reference_same_flops`: the reference does the same
  arithmetic, so the row also gives the reference's fraction of the peak on these FLOPs.
  """
  name: str
  fn: Callable
  args: Sequence = ()
  examples: int = 1
  threads_state: bool = False
  flops_fn: Optional[Callable] = None
  check: Optional[Callable[[Any], str]] = None
  reference_same_flops: bool = False


@dataclasses.dataclass(frozen=True)
class _Prepared:
  call: Callable[[], Any]
  compile_s: Optional[float]
  flops: Optional[float]
  xla_mib: Optional[float]
  peak_mib: float
  output: Any  # of the first call, where the workload has a `check`


def interleaved_medians(calls: Dict[Any, Callable], repeats: int) -> Dict[Any, float]:
  """Median wall time of each call, the calls taking turns so that load hits all alike."""
  seconds = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      seconds[name].append(time.perf_counter() - start)
  return {name: statistics.median(values) for name, values in seconds.items()}


def _reset_peak_rss() -> None:
  """Starts a new peak of resident memory (Linux); elsewhere the process peak stays monotone."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def peak_rss_mib() -> float:
  """The process's peak resident memory in MiB since the last reset (Linux) or its start."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024  # kB
  except OSError:
    pass
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB


# Instructions that move or select values without arithmetic; fusions and calls are judged by
# the computations they call.
_PLUMBING = frozenset(("parameter constant get-tuple-element tuple copy bitcast reshape broadcast "
                       "slice dynamic-slice dynamic-update-slice transpose concatenate pad "
                       "reverse select iota fusion call").split())
_FLOAT_RESULT = re.compile(r"=\s*(?:f16|bf16|f32|f64|c64|c128)\[[^\]]*\]\S*\s+([\w-]+)\(")
_CALLS = re.compile(
    r"(?:calls|body|condition|to_apply)=%?([\w.\-]+)|branch_computations=\{([^}]*)\}")
_LOOP_BODY = re.compile(r"\bwhile\(.*\bbody=%?([\w.\-]+)")


def _loops_float_math(hlo: str) -> bool:
  """Whether a while loop of an HLO module computes floating-point values, which XLA's cost
  analysis counts for one trip only. Loops of integer work are let through (their count then
  misses a few integer operations): threefry's rounds, which XLA:CPU keeps rolled, sit in every
  program that draws random numbers."""
  direct, calls, bodies, current = {}, {}, [], None
  for line in hlo.splitlines():
    if line.rstrip().endswith("{") and not line[:1].isspace() and not line.startswith("HloModule"):
      current = line.removeprefix("ENTRY ").split()[0].lstrip("%")
      direct[current], calls[current] = False, set()
    elif current is not None:
      result = _FLOAT_RESULT.search(line)
      direct[current] |= bool(result) and result.group(1) not in _PLUMBING
      for called, branches in _CALLS.findall(line):
        calls[current].update(name.strip().lstrip("%") for name in (called + branches).split(",")
                              if name.strip())
      bodies += _LOOP_BODY.findall(line)

  @functools.lru_cache(maxsize=None)
  def float_math(name: str) -> bool:
    return direct.get(name, False) or any(map(float_math, calls.get(name, ())))

  return any(map(float_math, bodies))


def _flops(compiled) -> Optional[float]:
  """XLA's FLOP count of a compiled program, or None where a loop does floating-point work."""
  if _loops_float_math(compiled.as_text() or ""):
    return None
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per program
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def _xla_mib(compiled) -> Optional[float]:
  stats = compiled.memory_analysis()
  if stats is None:
    return None
  total = (stats.argument_size_in_bytes + stats.output_size_in_bytes
           + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
  return total / 2**20


def _prepare(workload: Workload) -> _Prepared:
  """Compiles (when jitted) and runs `workload` once, measuring compile time and peak memory."""
  _reset_peak_rss()
  fn, args = workload.fn, list(workload.args)
  compile_s = flops = xla_mib = None
  if hasattr(fn, "lower"):
    args = list(jax.device_put(args))  # no host-to-device copy inside the timed calls
    start = time.perf_counter()
    fn = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    flops, xla_mib = _flops(fn), _xla_mib(fn)
    if flops is None and workload.flops_fn is not None:
      flops = _flops(workload.flops_fn.lower(*args).compile())

  def call():
    out = fn(*args)
    if workload.threads_state:
      args[0] = out[0]
    return jax.block_until_ready(out)

  out = call()
  return _Prepared(call, compile_s, flops and flops / workload.examples, xla_mib, peak_rss_mib(),
                   out if workload.check else None)


def progress(text: str) -> None:
  """A progress line on stderr (stdout carries the table)."""
  print(text, file=sys.stderr, flush=True)


def compare(workloads: Sequence[Workload], reference: Optional[Workload] = None, *,
            repeats: int, no_reference: str = "none") -> List[dict]:
  """One row per workload against `reference` (None: `no_reference` names why there is none).

  Every workload and the reference are compiled and run once, the workloads' checks see those
  outputs, then all are timed in `repeats` interleaved rounds; throughputs are of the medians.
  """
  prepared = [_prepare(w) for w in workloads]
  calls = {i: p.call for i, p in enumerate(prepared)}
  if reference is not None:
    calls["reference"] = _prepare(reference).call
  notes = [w.check(p.output) if w.check else None for w, p in zip(workloads, prepared)]
  seconds = interleaved_medians(calls, repeats)
  reference_rate = reference and reference.examples / seconds["reference"]
  rows = []
  for i, (workload, p, note) in enumerate(zip(workloads, prepared, notes)):
    rate = workload.examples / seconds[i]
    rows.append(dict(
        workload=workload.name, examples_per_s=rate,
        reference=reference.name if reference else no_reference,
        reference_examples_per_s=reference_rate, ratio=reference_rate and rate / reference_rate,
        compile_s=p.compile_s, peak_mib=p.peak_mib, xla_mib=p.xla_mib,
        flops_per_example=p.flops, fraction_of_peak=None))
    if note:
      rows[-1]["note"] = note
    if workload.reference_same_flops and reference_rate:
      rows[-1]["reference_flops_per_example"] = p.flops
    progress(f"  {workload.name}: {rate:.4g} examples/s")
  return rows


def batching_ceiling(prefix: str, loss_fn: Callable, variables, x, y, *, sizes: Sequence[int],
                     repeats: int) -> List[dict]:
  """Rows of the model's batched input gradient at each batch size in `sizes[1:]`, against
  jitted one-example calls (`sizes[0]`, normally 1; at least 64 examples per timing).

  Every gradient attack and attribution is a sequence of such gradients, so the best ratio
  bounds what batching any of them can gain over a loop of jitted one-example calls on this
  device, whatever the implementation; a loop with host work between calls (the IG loop's
  accumulation) is slower by that work.

  Args:
    prefix: the workloads' name prefix.
    loss_fn: per-example `(variables, x, y) -> scalar`.
    variables: the model variables.
    x, y: at least `max(sizes)` inputs and labels.
    sizes: the batch sizes to time, the reference's first.
    repeats: interleaved timing rounds.
  """
  grad = jax.jit(jax.vmap(jax.grad(loss_fn, argnums=1), in_axes=(None, 0, 0)))
  first, calls = sizes[0], max(1, 64 // sizes[0])
  batch = jax.device_put((x[:first], y[:first]))
  reference = Workload(f"input gradient b{first}, {calls} jitted calls",
                       lambda: [grad(variables, *batch) for _ in range(calls)],
                       examples=calls * first)
  workloads = [Workload(f"{prefix} input gradient b{size}", grad, (variables, x[:size], y[:size]),
                        examples=size) for size in sizes[1:]]
  return compare(workloads, reference, repeats=repeats)


def matmul_peak(n: int, repeats: int = 7) -> float:
  """This machine's float32 matmul FLOP/s: XLA's FLOPs of a jitted [n, n] @ [n, n] over the
  median wall time of `repeats` calls."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  compiled = jax.jit(jnp.matmul).lower(a, a).compile()
  compiled(a, a).block_until_ready()
  seconds = interleaved_medians({"matmul": lambda: compiled(a, a).block_until_ready()}, repeats)
  return _flops(compiled) / seconds["matmul"]


def with_fraction_of_peak(rows: List[dict], peak_flops: float) -> List[dict]:
  """The rows with "fraction_of_peak": achieved FLOP/s over `peak_flops`, where FLOPs exist;
  and "reference_fraction_of_peak" where a row has "reference_flops_per_example"."""

  def fractions(row):
    flops, reference_flops = row["flops_per_example"], row.get("reference_flops_per_example")
    extra = {} if not reference_flops else {"reference_fraction_of_peak": (
        reference_flops * row["reference_examples_per_s"] / peak_flops)}
    return dict(row, fraction_of_peak=flops and flops * row["examples_per_s"] / peak_flops,
                **extra)

  return [fractions(row) for row in rows]


def _cell(value) -> str:
  if value is None:
    return "-"
  if isinstance(value, str):
    return value
  if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
    return f"{value:.3e}"
  return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def format_table(rows: List[dict], peak_flops: float, size: str) -> str:
  """The rows as one Markdown table, then the legend, the notes and any row over 4 GiB."""
  cells = [[header for _, header in COLUMNS]]
  cells += [[_cell(row[key]) for key, _ in COLUMNS] for row in rows]
  widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
  lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in cells]
  lines.insert(1, "|" + "|".join("-" * (w + 1) + (":" if i not in (0, 2) else "-")
                                 for i, w in enumerate(widths)) + "|")
  lines += ["", textwrap.fill(f"{size} sizes; matmul peak {peak_flops / 1e9:.1f} GFLOP/s "
                             f"(float32, jax {jax.__version__} on "
                             f"{jax.devices()[0].device_kind}). {LEGEND}", 100)]
  for row in rows:
    notes = [row["note"]] if row.get("note") else []
    if row.get("reference_fraction_of_peak"):
      notes.append(f"the reference reaches {row['reference_fraction_of_peak']:.3g} of the matmul "
                   "peak on the same FLOPs")
    if notes:
      lines.append(f"- {row['workload']}: {'; '.join(notes)}")
  over = [row["workload"] for row in rows if row["peak_mib"] > MEMORY_LIMIT_MIB]
  if over:
    lines.append(f"OVER {MEMORY_LIMIT_MIB} MiB peak: {', '.join(over)}")
  return "\n".join(lines)


def size_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds --tiny / --full (default: the default size) and --json to `parser`."""
  group = parser.add_mutually_exclusive_group()
  group.add_argument("--tiny", dest="size", action="store_const", const="tiny",
                     help="seconds-long sizes for tests")
  group.add_argument("--full", dest="size", action="store_const", const="full",
                     help="the published sizes (many minutes)")
  parser.set_defaults(size="default")
  parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON here")


def write_json(path: str, rows: List[dict], peak_flops: float, size: str, wall_s: float) -> None:
  with open(path, "w") as f:
    json.dump({"size": size, "matmul_peak_flops_per_s": peak_flops, "wall_s": wall_s,
               "columns": [key for key, _ in COLUMNS], "rows": rows}, f, indent=1)


def run_suite(suite: str, groups: Callable[[str, argparse.Namespace], Dict[str, Callable]],
              argv: Sequence[str], description: str,
              add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
              ) -> List[dict]:
  """Runs the selected groups of one suite, prints their table and writes their JSON.

  Args:
    suite: the suite's name, the prefix of its groups' names (`suite/group`).
    groups: `(size, args) -> {group: thunk}`, each thunk returning its rows; built lazily, so
      unselected groups cost nothing.
    argv: the command line.
    description: the --help text.
    add_arguments: adds the suite's own arguments to the parser.

  Returns:
    The rows.
  """
  start = time.perf_counter()
  parser = argparse.ArgumentParser(description=description)
  size_arguments(parser)
  parser.add_argument("--only", nargs="+", metavar="GROUP", help=f"groups of {suite} to run")
  parser.add_argument("--matmul-peak", type=float, help=argparse.SUPPRESS)  # from bench.py
  add_arguments(parser)
  args = parser.parse_args(argv[1:])
  available = groups(args.size, args)
  names = [f"{suite}/{name}" for name in available]
  selected = [name if name.startswith(f"{suite}/") else f"{suite}/{name}"
              for name in args.only or names]
  unknown = sorted(set(selected) - set(names))
  if unknown:
    parser.error(f"--only: unknown group(s) {unknown}; choose from {names}")
  peak = args.matmul_peak or matmul_peak(MATMUL_N[args.size])
  rows = []
  for name, thunk in zip(names, available.values()):
    if name in selected:
      progress(f"{name} ({args.size})")
      rows += thunk()
  if not args.matmul_peak:  # the better of two medians: load at either end lowers one
    peak = max(peak, matmul_peak(MATMUL_N[args.size]))
  rows = with_fraction_of_peak(rows, peak)
  print(format_table(rows, peak, args.size), flush=True)
  if args.json:
    write_json(args.json, rows, peak, args.size, time.perf_counter() - start)
  return rows
