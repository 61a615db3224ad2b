"""Differentiable audio front end, equal to librosa's: framing, windows, STFT, mel, log-mel.

`log_mel(...)` is the one most code needs: a pure per-example `waveform -> [frames, n_mels]`
function that is jit-, vmap- and grad-able, so attacks on the waveform differentiate through it.
`min_max_scale` (or `log_mel(scaling="min_max")`) scales each example to [0, 1].
"""

from soundjax.frontend.mel import SCALINGS, log_mel, mel_filterbank, min_max_scale, power_to_db
from soundjax.frontend.stft import (
    PAD_MODES,
    WINDOWS,
    frame,
    num_frames,
    power_spectrogram,
    stft,
    window_function,
)

__all__ = ["PAD_MODES", "SCALINGS", "WINDOWS", "frame", "log_mel", "mel_filterbank",
           "min_max_scale", "num_frames", "power_spectrogram", "power_to_db", "stft",
           "window_function"]
