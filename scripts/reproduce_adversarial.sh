#!/usr/bin/env bash
# Paper 4 (adversarial attacks on sound classifiers): the synthetic study end to end,
# then its results page docs/results/adversarial.md:
#   ./scripts/reproduce_adversarial.sh [--real] [--config.FIELD=VALUE ...]
# --real runs configs/adversarial.py:fsd_kaggle2018 on the published data, from its manual folder.
# Folders, resuming and the page: scripts/reproduce_lib.sh.
source "$(dirname "$0")/reproduce_lib.sh"
reproduce adversarial adversarial fsd_kaggle2018 "$@"
