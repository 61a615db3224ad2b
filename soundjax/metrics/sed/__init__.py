"""Sound event detection: sed_eval-exact event- and segment-based metrics, frame decoding.

`event_based` and `segment_based` equal sed_eval 0.2.1's figures (tested figure for figure);
`frames_to_events` decodes a `[frames, classes]` activity matrix into `(onset, offset, label)`.
"""

from soundjax.metrics.sed.decoding import frames_to_events
from soundjax.metrics.sed.matching import MATCHING_TYPES
from soundjax.metrics.sed.scoring import event_based, segment_based

__all__ = ["MATCHING_TYPES", "event_based", "frames_to_events", "segment_based"]
