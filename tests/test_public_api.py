"""The public names of the README and DESIGN.md resolve from the package roots."""

import importlib

import pytest

PUBLIC = [
    ("soundjax.attacks", ["fgsm", "bim", "pgd", "mi_fgsm", "deepfool", "carlini_wagner_l2",
                          "lbfgs", "white_noise", "targeted", "iterative", "init_uniform_linf",
                          "normalize_l1", "project_linf", "budget", "ATTACKS"]),
    ("soundjax.attribution", ["gradient", "abs_gradient", "grad_x_input", "integrated_gradients",
                              "smoothgrad", "random_attribution", "method", "METHODS", "occlude",
                              "replacement", "REPLACEMENTS", "occlusion_sweep", "summarize"]),
    ("soundjax.frontend", ["log_mel", "stft", "mel_filterbank", "power_to_db", "frame"]),
    ("soundjax.metrics.sed", ["event_based", "segment_based", "frames_to_events"]),
    ("soundjax.training", ["train", "TrainState", "evaluate", "read_metrics"]),
    ("soundjax.parallel", ["batch_mesh", "replicate", "shard_batch", "chunked"]),
    ("soundjax.report", ["write_html_report", "markdown_table", "write_json"]),
    ("soundjax.losses", ["model_logits", "softmax_cross_entropy", "sigmoid_binary_cross_entropy"]),
    ("soundjax.types", ["LossFn", "LogitsFn", "Attack", "Attribution", "Init", "Projection",
                        "Replacement", "EventLists"]),
    ("soundjax.checks", ["ConfigError", "require"]),
]


@pytest.mark.parametrize("module, names", PUBLIC, ids=[module for module, _ in PUBLIC])
def test_public_names_resolve_from_the_package_root(module, names):
  package = importlib.import_module(module)
  missing = [name for name in names if not hasattr(package, name)]
  assert not missing, f"{module} lacks {missing}"


def test_registries_are_the_names_configs_may_use():
  from soundjax import attacks, attribution, models
  from soundjax.data.builders import BUILDERS
  assert all(callable(f) for f in attacks.ATTACKS.values())
  assert all(callable(f) for f in attribution.METHODS.values())
  assert {"vgg", "waveform_cnn"} <= set(models.MODELS) and "synth_events" in BUILDERS
