"""Datasets as TFDS builders (array_record), read with random access and batched with grain."""

from soundjax.data.audio import AudioError, check_waveform, fit_length, load_audio
from soundjax.data.pipeline import (
                                     arrays,
                                     batches,
                                     num_classes,
                                     prepare,
                                     prepare_config,
                                     split_source,
)
