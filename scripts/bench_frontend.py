"""Throughput of the log-mel front end against librosa on four-second clips at 22.05 kHz.

Usage: python scripts/bench_frontend.py [--only GROUP ...] [--tiny | --full] [--json out.json]

Per configuration (a group) it times, interleaved with the librosa loop over the same clips (the
reference), the jitted and vmapped `frontend.log_mel` forward pass and its input gradient (what
an attack on a waveform model pays per step), with the defaults (the float32 FFT) and with
`precise=True` (the double-float FFT); the note of each forward row is the largest difference
from librosa in dB. 64 clips by default and with --full (issue #11's workload), 2 with --tiny.
"""

import sys

import benchlib
import jax
import jax.numpy as jnp
import librosa
import numpy as np

from soundjax import frontend

SAMPLE_RATE = 22050
CLIPS = {"tiny": 2, "default": 64, "full": 64}
SECONDS = {"tiny": 0.5, "default": 4, "full": 4}
CONFIGS = {
    "1024-512": dict(n_fft=1024, hop_length=512, n_mels=64),  # DCASE 2018 task 2 (Iqbal et al.)
    "1024-128": dict(n_fft=1024, hop_length=128, n_mels=64),  # the Cochlear.ai dense-mel front end
}


def librosa_log_mel(clips: np.ndarray, *, n_fft: int, hop_length: int, n_mels: int) -> list:
  return [librosa.power_to_db(librosa.feature.melspectrogram(
      y=clip, sr=SAMPLE_RATE, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels),
                              ref=1.0, top_db=80.0).T for clip in clips]


def compare_config(name: str, config: dict, clips: np.ndarray, repeats: int) -> list:
  """The rows of one configuration: forward and gradient, default and precise, against librosa."""
  reference = benchlib.Workload(f"librosa loop {name}", lambda: librosa_log_mel(clips, **config),
                                examples=len(clips))
  workloads, forwards = [], {}
  for precise in (False, True):
    f = frontend.log_mel(sample_rate=SAMPLE_RATE, **config, precise=precise)
    label = f"frontend/{name} {'precise=True' if precise else 'defaults'}"
    forwards[len(workloads)] = forward = jax.jit(jax.vmap(f))
    workloads.append(benchlib.Workload(f"{label} log_mel", forward, (clips,), len(clips)))
    gradient = jax.jit(jax.grad(lambda x, f=f: jnp.sum(jax.vmap(f)(x))))
    workloads.append(benchlib.Workload(f"{label} grad", gradient, (clips,), len(clips)))
  rows = benchlib.compare(workloads, reference, repeats=repeats)
  want = np.stack(librosa_log_mel(clips, **config))
  for index, forward in forwards.items():
    error = np.max(np.abs(np.asarray(forward(clips)) - want))
    rows[index]["note"] = f"max |log_mel - librosa| on float32 clips {error:.2e} dB"
  return rows


def groups(size: str, args) -> dict:
  del args
  rng = np.random.default_rng(0)
  clips = (0.1 * rng.standard_normal((CLIPS[size], int(SAMPLE_RATE * SECONDS[size])))).astype(
      np.float32)
  return {name: lambda name=name, config=config: compare_config(
      name, config, clips, benchlib.REPEATS[size]) for name, config in CONFIGS.items()}


if __name__ == "__main__":
  benchlib.run_suite("frontend", groups, sys.argv, __doc__.splitlines()[0])
