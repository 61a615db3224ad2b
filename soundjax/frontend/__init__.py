"""Differentiable audio front end, equal to librosa's: framing, STFT, mel filterbank, log-mel.

`log_mel(...)` is the one most code needs: a pure per-example `waveform -> [frames, n_mels]`
function that is jit-, vmap- and grad-able, so attacks on the waveform differentiate through it.
"""

from soundjax.frontend._double_float import hann_window
from soundjax.frontend.mel import log_mel, mel_filterbank, power_to_db
from soundjax.frontend.stft import PAD_MODES, frame, num_frames, power_spectrogram, stft

__all__ = ["PAD_MODES", "frame", "hann_window", "log_mel", "mel_filterbank", "num_frames",
           "power_spectrogram", "power_to_db", "stft"]
