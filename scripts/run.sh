#!/usr/bin/env bash
# The README's first command: set up .venv and run the quickstart on built-in synthetic data.
# Extra arguments go to soundjax, e.g. ./scripts/run.sh --config.train.num_steps=100
source "$(dirname "$0")/setup_env.sh" ""
soundjax --config=configs/quickstart.py --workdir=runs/quickstart "$@"
