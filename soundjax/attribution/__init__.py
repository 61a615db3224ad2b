"""Loss-gradient attributions, occlusion with replacement values, and the occlusion sweep."""

from soundjax.attribution.gradients import (Attribution, abs_gradient, grad_x_input, gradient,
                                            integrated_gradients, random_attribution, smoothgrad)
from soundjax.attribution.occlusion import (DIRECTIONS, Replacement, occlude, occlusion_count,
                                            occlusion_map, rank, replace_constant,
                                            replace_dataset_mean, replace_dataset_min,
                                            replace_example_max, replace_example_min,
                                            replace_noise, replacement)
from soundjax.attribution.sweep import (CURVES, curve_area, deletion_insertion, occlusion_sweep,
                                        summarize)

__all__ = [
    "Attribution", "abs_gradient", "grad_x_input", "gradient", "integrated_gradients",
    "random_attribution", "smoothgrad", "DIRECTIONS", "Replacement", "occlude", "occlusion_count",
    "occlusion_map", "rank", "replace_constant", "replace_dataset_mean", "replace_dataset_min",
    "replace_example_max", "replace_example_min", "replace_noise", "replacement", "CURVES",
    "curve_area", "deletion_insertion", "occlusion_sweep", "summarize",
]
