# Sourced by run.sh and test.sh: make .venv (once) and install soundjax with extras "$1" into it
# whenever pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${1:-}"
python="$(command -v python3.11 || command -v python3)"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
# TFDS and absl log every shard they write; keep the console for results.
export TF_CPP_MIN_LOG_LEVEL=2
