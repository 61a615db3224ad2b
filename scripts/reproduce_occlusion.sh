#!/usr/bin/env bash
# Paper 1 (occlusion by loss-gradient attributions): the synthetic study end to end,
# then its results page docs/results/occlusion.md:
#   ./scripts/reproduce_occlusion.sh [--real] [--config.FIELD=VALUE ...]
# --real runs configs/occlusion.py:jamendo on the published data, from its manual folder.
# Folders, resuming and the page: scripts/reproduce_lib.sh.
source "$(dirname "$0")/reproduce_lib.sh"
reproduce occlusion occlusion jamendo "$@"
