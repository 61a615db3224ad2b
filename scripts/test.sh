#!/usr/bin/env bash
# The README's second command: set up .venv with the test extra and run the test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/test_frontend.py -x
source "$(dirname "$0")/setup_env.sh" "test"
python -m pytest -n 2 "$@"
