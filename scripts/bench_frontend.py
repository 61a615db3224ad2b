"""Throughput of the log-mel front end against librosa on 64 four-second clips at 32 kHz.

Usage: python scripts/bench_frontend.py

Per configuration it prints the jitted and vmapped `frontend.log_mel` forward pass, its input
gradient (what an attack on a waveform model pays per step), the librosa loop over the same clips
(the reference), and the largest difference between the two in dB.
"""

import benchlib
import jax
import jax.numpy as jnp
import librosa
import numpy as np

from soundjax import frontend

SAMPLE_RATE = 32000
CLIPS = 64
SECONDS = 4
CONFIGS = (
    dict(n_fft=1024, hop_length=512, n_mels=64),  # DCASE 2018 task 2 (Iqbal et al.) log-mel
    dict(n_fft=1024, hop_length=128, n_mels=64),  # the Cochlear.ai dense-mel front end
)


def librosa_log_mel(clips: np.ndarray, *, n_fft: int, hop_length: int, n_mels: int) -> list:
  return [librosa.power_to_db(librosa.feature.melspectrogram(
      y=clip, sr=SAMPLE_RATE, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels),
                              ref=1.0, top_db=80.0).T for clip in clips]


def main():
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; librosa {librosa.__version__}; "
        f"{CLIPS} clips of {SECONDS} s at {SAMPLE_RATE} Hz")
  clips = np.random.default_rng(0).standard_normal((CLIPS, SAMPLE_RATE * SECONDS))
  clips = (0.1 * clips).astype(np.float32)
  for config in CONFIGS:
    name = "{n_fft}/{hop_length}/{n_mels}".format(**config)
    reference = benchlib.seconds_per_call(lambda c: librosa_log_mel(c, **config), clips,
                                          repeats=1)
    benchlib.report(f"librosa loop {name} (reference)", CLIPS, reference)
    x = jnp.asarray(clips)
    want = np.stack(librosa_log_mel(clips, **config))
    for precise in (True, False):
      f = frontend.log_mel(sample_rate=SAMPLE_RATE, **config, precise=precise)
      forward = jax.jit(jax.vmap(f))
      gradient = jax.jit(jax.grad(lambda x, f=f: jnp.sum(jax.vmap(f)(x))))
      label = f"{name} precise={precise}"
      benchlib.report(f"log_mel jit(vmap) {label}", CLIPS,
                      benchlib.seconds_per_call(forward, x), reference)
      benchlib.report(f"grad of log_mel jit(vmap) {label}", CLIPS,
                      benchlib.seconds_per_call(gradient, x), reference)
      error = np.max(np.abs(np.asarray(forward(x)) - want))
      print(f"  max |log_mel - librosa| on float32 clips: {error:.2e} dB", flush=True)


if __name__ == "__main__":
  main()
