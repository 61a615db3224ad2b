"""scripts/bench.py end to end on tiny sizes, and the figures benchlib reads from XLA."""

import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import benchlib  # noqa: E402  pylint: disable=g-import-not-at-top

# The columns, written out here rather than read from benchlib: a dropped, renamed or
# reordered column fails.
HEADERS = ["workload", "examples/s", "reference", "reference examples/s", "ratio", "compile s",
           "peak MiB", "XLA MiB", "FLOPs/example", "fraction of matmul peak"]
KEYS = ["workload", "examples_per_s", "reference", "reference_examples_per_s", "ratio",
        "compile_s", "peak_mib", "xla_mib", "flops_per_example", "fraction_of_peak"]


def _bench(*args):
  return subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), *args], capture_output=True,
                        text=True, timeout=300, check=False)


def _table(stdout: str):
  """The cells of the one Markdown table in `stdout`, header first (separator dropped)."""
  lines = [line for line in stdout.splitlines() if line.startswith("|")]
  assert set(lines[1]) <= set("|-:"), lines[1]
  return [[cell.strip() for cell in line.strip("|").split("|")] for line in [lines[0]] + lines[2:]]


def test_bench_prints_one_table_equal_to_its_json(tmp_path):
  path = tmp_path / "bench.json"
  result = _bench("--tiny", "--only", "pooling", "--json", str(path))
  assert result.returncode == 0, result.stderr[-3000:]
  payload = json.loads(path.read_text())
  rows = payload["rows"]
  assert [row["workload"].split()[:2] for row in rows] == [
      ["pooling/forward", "reshape-and-max"], ["pooling/input-gradient", "reshape-and-max"]]
  for row in rows:
    assert list(row)[:len(KEYS)] == KEYS
    assert row["reference"] == "nn.max_pool"
    numbers = [row[key] for key in KEYS if key not in ("workload", "reference")]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in numbers), row
    assert math.isclose(row["ratio"], row["examples_per_s"] / row["reference_examples_per_s"])
    assert math.isclose(row["fraction_of_peak"], row["flops_per_example"] * row["examples_per_s"]
                        / payload["matmul_peak_flops_per_s"])
    assert row["xla_mib"] < row["peak_mib"] < 4096
  table = _table(result.stdout)
  assert table[0] == HEADERS
  assert len(table) == 1 + len(rows)  # one table: one header, one line per row
  for cells, row in zip(table[1:], rows):
    assert cells[0] == row["workload"] and cells[2] == row["reference"]
    for cell, key in zip(cells, KEYS):
      if key not in ("workload", "reference"):  # printed to 3-4 significant digits
        assert math.isclose(float(cell), row[key], rel_tol=6e-3), (key, cell, row[key])
  assert "wall time" in result.stdout


def test_bench_names_an_unknown_suite():
  result = _bench("--tiny", "--only", "nosuch")
  assert result.returncode != 0 and "--only" in result.stderr and "nosuch" in result.stderr


def test_compare_reads_flops_memory_and_peak_from_the_workload():
  n, examples = 64, 4
  a = jnp.ones((n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  looped = jax.jit(lambda a, b: jax.lax.fori_loop(0, 3, lambda i, c: c @ b, a))
  unrolled = jax.jit(lambda a, b: a @ b @ b @ b)
  drawn = jax.jit(lambda key, b: jax.random.normal(key, (n, n)) @ b)  # threefry loops on CPU
  allocation = 256 * 2**20

  def allocate():  # touched pages count in resident memory
    return np.ones(allocation // 8)

  rows = benchlib.compare([
      benchlib.Workload("matmul", matmul, (a, a), examples),
      benchlib.Workload("looped", looped, (a, a), examples),
      benchlib.Workload("looped, FLOPs of the unrolled", looped, (a, a), examples,
                        flops_fn=unrolled),
      benchlib.Workload("random matmul", drawn, (jax.random.key(0), a), examples),
      benchlib.Workload("allocate", allocate)], repeats=1, no_reference="none here")
  flops = 2 * n**3
  assert rows[0]["flops_per_example"] == pytest.approx(flops / examples)
  assert rows[0]["xla_mib"] >= 3 * n * n * 4 / 2**20  # two arguments and the output
  assert rows[1]["flops_per_example"] is None  # XLA would count one trip of 3
  assert rows[2]["flops_per_example"] == pytest.approx(3 * flops / examples)
  assert rows[3]["flops_per_example"] >= flops / examples  # its integer loop is let through
  assert rows[4]["compile_s"] is None and rows[4]["flops_per_example"] is None
  assert rows[4]["peak_mib"] >= allocation / 2**20
  assert all(row["reference"] == "none here" and row["ratio"] is None for row in rows)
