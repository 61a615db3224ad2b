"""Loss-gradient attributions, occlusion with replacement values, and the occlusion sweep."""

from soundjax.attribution.gradients import (
                                            METHODS,
                                            abs_gradient,
                                            grad_x_input,
                                            gradient,
                                            integrated_gradients,
                                            method,
                                            random_attribution,
                                            smoothgrad,
)
from soundjax.attribution.occlusion import (
                                            DIRECTIONS,
                                            REPLACEMENTS,
                                            occlude,
                                            occlusion_count,
                                            occlusion_map,
                                            rank,
                                            replace_constant,
                                            replace_dataset_mean,
                                            replace_dataset_min,
                                            replace_example_max,
                                            replace_example_min,
                                            replace_noise,
                                            replacement,
)
from soundjax.attribution.sweep import (
                                            CURVES,
                                            curve_area,
                                            deletion_insertion,
                                            occlusion_sweep,
                                            summarize,
)
from soundjax.types import Attribution, Replacement

__all__ = [
    "Attribution", "METHODS", "abs_gradient", "grad_x_input", "gradient", "integrated_gradients",
    "method", "random_attribution", "smoothgrad", "DIRECTIONS", "REPLACEMENTS", "Replacement",
    "occlude", "occlusion_count", "occlusion_map", "rank", "replace_constant",
    "replace_dataset_mean", "replace_dataset_min", "replace_example_max", "replace_example_min",
    "replace_noise", "replacement", "CURVES", "curve_area", "deletion_insertion",
    "occlusion_sweep", "summarize",
]
