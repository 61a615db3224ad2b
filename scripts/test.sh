#!/usr/bin/env bash
# The README's second command: set up .venv with the test extra, check the import layers
# (import-linter contracts in pyproject.toml) and the lints (ruff), then run the test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/frontend -x
source "$(dirname "$0")/setup_env.sh" "test"
ruff check soundjax configs scripts tests
lint-imports --no-cache
python -m pytest -n 2 "$@"
