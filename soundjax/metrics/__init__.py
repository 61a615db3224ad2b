"""Metrics: classification scores, perturbation sizes, sound event detection."""
