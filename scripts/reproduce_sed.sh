#!/usr/bin/env bash
# Paper 3 (SED with memory-controlled self-attention): the synthetic study end to end,
# then its results page docs/results/sed.md:
#   ./scripts/reproduce_sed.sh [--real] [--config.FIELD=VALUE ...]
# --real runs configs/sed_attention.py:urban_sed on the published data, from its manual folder.
# Folders, resuming and the page: scripts/reproduce_lib.sh.
source "$(dirname "$0")/reproduce_lib.sh"
reproduce sed sed_attention urban_sed "$@"
