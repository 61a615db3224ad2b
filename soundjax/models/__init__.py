"""Flax Linen models of the reproduced papers, looked up by name.

Every model is `Model(num_classes=..., **hyper_parameters)` and is called as
`model.apply(variables, x, train=False) -> logits [batch, num_classes]`, or frame-wise logits
`[batch, frames, num_classes]` for the sound event detectors (`crnn_sed`); with `train=True`,
BatchNorm statistics are in the mutable `batch_stats` collection and dropout draws from the
'dropout' rng. `input_kind(name)` says what `x` is:

- "logmel": `[batch, frames, n_mels]` log-mel spectrograms,
- "waveform": `[batch, samples]` raw audio (the front end, if any, is inside the model),
- "image": `[batch, height, width]` images.
"""

from typing import Any

import flax.linen as nn

from soundjax.models.attention import MultiHeadSelfAttention, SeqSelfAttention
from soundjax.models.crnn import CRNN
from soundjax.models.crnn_sed import CRNNSED
from soundjax.models.densenet import DenseNetSE
from soundjax.models.digits import DigitsCNN
from soundjax.models.embedding_cnn import EmbeddingCNN, embedding_fn
from soundjax.models.gated import GatedCNN
from soundjax.models.layers import max_pool
from soundjax.models.schlueter import SchlueterCNN
from soundjax.models.vgg import VGG
from soundjax.models.waveform import WaveformCNN

MODELS: dict[str, type[nn.Module]] = {
    "vgg": VGG,
    "gated_cnn": GatedCNN,
    "crnn": CRNN,
    "crnn_sed": CRNNSED,
    "densenet_se": DenseNetSE,
    "waveform_cnn": WaveformCNN,
    "schlueter_cnn": SchlueterCNN,
    "digits_cnn": DigitsCNN,
    "embedding_cnn": EmbeddingCNN,
}

INPUT_KINDS = ("logmel", "waveform", "image")


def _model_class(name: str) -> type[nn.Module]:
  if name not in MODELS:
    raise ValueError(f"unknown model name {name!r}; known: {', '.join(sorted(MODELS))}")
  return MODELS[name]


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """Builds the model registered under `name`.

  Args:
    name: one of `MODELS`.
    **kwargs: the model's hyper-parameters, `num_classes` included.

  Returns:
    The Linen module.

  Example:
    >>> model = get_model("vgg", num_classes=41, channels=(16, 32, 64))
  """
  return _model_class(name)(**kwargs)


def input_kind(name: str) -> str:
  """Returns "logmel", "waveform" or "image": what the model `name` takes as input."""
  return _model_class(name).input_kind


def frame_wise(name: str) -> bool:
  """Whether the model `name` outputs frame-wise logits (a detector), not one per clip."""
  return getattr(_model_class(name), "frame_wise", False)


__all__ = ["CRNN", "CRNNSED", "DenseNetSE", "DigitsCNN", "EmbeddingCNN", "GatedCNN", "INPUT_KINDS",
           "MODELS", "MultiHeadSelfAttention", "SchlueterCNN", "SeqSelfAttention", "VGG",
           "WaveformCNN", "embedding_fn", "frame_wise", "get_model", "input_kind", "max_pool"]
