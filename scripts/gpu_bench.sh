#!/usr/bin/env bash
# The bench on whatever accelerator JAX sees (GPU or TPU; the CPU when none): prints the device
# first, then bench.py's table. Arguments go to bench.py, e.g. --full --json gpu.json.
# Install the accelerator's JAX first: .venv/bin/pip install -e ".[cuda]" (or "jax[tpu]").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
"$python" -c 'import jax; print("devices:", jax.devices(), "backend:", jax.default_backend())'
exec "$python" "$root/scripts/bench.py" "$@"
