"""Metrics: classification scores, perturbation sizes, frame-wise detection scores, and sound
event detection (`sed`: sed_eval-exact event- and segment-based metrics, frame decoding).
"""

from soundjax.metrics import classification, frame_detection, perturbation, sed

__all__ = ["classification", "frame_detection", "perturbation", "sed"]
