"""`log_mel` refuses clips shorter than one frame; the framing refuses empty signals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import frontend

N_FFT = 64


@pytest.mark.parametrize("center, pad_mode", [(True, "constant"), (True, "reflect"),
                                              (False, "constant")])
def test_one_frame_of_samples_is_the_shortest_clip(center, pad_mode):
  f = frontend.log_mel(sample_rate=8000, n_fft=N_FFT, hop_length=16, n_mels=8, center=center,
                       pad_mode=pad_mode, precise=False)
  clip = jnp.asarray(np.random.default_rng(0).standard_normal(N_FFT), jnp.float32)
  frames = frontend.num_frames(N_FFT, n_fft=N_FFT, hop_length=16, center=center)
  assert jax.jit(f)(clip).shape == (frames, 8)
  for samples in (N_FFT - 1, 1, 0):
    with pytest.raises(ValueError, match=rf"^soundjax\.frontend\.log_mel: the waveform "
                       rf"(has {samples} samples|is empty), shorter than one frame; it needs at "
                       rf"least n_fft = {N_FFT} samples"):
      f(clip[:samples])


def test_log_mel_still_names_a_batch_passed_without_vmap():
  f = frontend.log_mel(sample_rate=8000, n_fft=N_FFT, hop_length=16, n_mels=8)
  with pytest.raises(ValueError, match=r"waveform must be 1-D \[samples\].*jax\.vmap"):
    f(jnp.zeros((2, 128)))


@pytest.mark.parametrize("center", [True, False])
def test_framing_refuses_an_empty_signal(center):
  with pytest.raises(ValueError, match=r"the signal is empty \(0 samples\)"):
    frontend.num_frames(0, n_fft=N_FFT, hop_length=16, center=center)
  with pytest.raises(ValueError, match=r"the signal is empty"):
    frontend.frame(jnp.zeros(0), n_fft=N_FFT, hop_length=16, center=center)
