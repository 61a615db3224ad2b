"""Sound event detection: sed_eval-exact metrics, psds_eval-exact PSDS, decoding, post-processing.

`event_based` and `segment_based` equal sed_eval 0.2.1's figures (tested figure for figure);
`psds_from_operating_points` and `psds_from_probabilities` equal psds_eval 0.5.3's PSDS, with the
DCASE task 4 scenarios `PSDS1` and `PSDS2`; `frames_to_events` decodes a `[frames, classes]`
activity matrix into `(onset, offset, label)`, and `postprocessing` holds the steps around it
(median filtering, threshold choice, DCASE TSV files, event rolls).
"""

from soundjax.metrics.sed.decoding import frames_to_events
from soundjax.metrics.sed.matching import MATCHING_TYPES
from soundjax.metrics.sed.postprocessing import (
    TSV_HEADER,
    choose_thresholds,
    events_to_roll,
    median_filter,
    merge_overlapping,
    probabilities_to_events,
    read_events_tsv,
    write_events_tsv,
)
from soundjax.metrics.sed.psds import (
    PSDS1,
    PSDS2,
    PSDSResult,
    Scenario,
    psds_from_operating_points,
    psds_from_probabilities,
)
from soundjax.metrics.sed.scoring import event_based, segment_based

__all__ = ["MATCHING_TYPES", "PSDS1", "PSDS2", "PSDSResult", "Scenario", "TSV_HEADER",
           "choose_thresholds", "event_based", "events_to_roll", "frames_to_events",
           "median_filter", "merge_overlapping", "probabilities_to_events",
           "psds_from_operating_points", "psds_from_probabilities", "read_events_tsv",
           "segment_based", "write_events_tsv"]
