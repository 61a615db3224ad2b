#!/usr/bin/env bash
# Paper 2 (vocal percussion embeddings): the synthetic study end to end,
# then its results page docs/results/vocal_percussion.md:
#   ./scripts/reproduce_vocal_percussion.sh [--real] [--config.FIELD=VALUE ...]
# --real runs configs/vocal_percussion.py:avp_lvt on the published data, from its manual folder.
# Folders, resuming and the page: scripts/reproduce_lib.sh.
source "$(dirname "$0")/reproduce_lib.sh"
reproduce vocal_percussion vocal_percussion avp_lvt "$@"
