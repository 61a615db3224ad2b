"""Throughput of batched FGSM and PGD-10 against a per-example Python loop, and against the same
attacks written in PyTorch where torch is available.

Model: the VGG-style victim (`models.VGG`: [Conv 3x3 + ReLU + BN] x2 + 2x2 max-pool per block,
global average, Dense) with channels (8, 16, 32, 64), 41 classes, random weights (costs do not
depend on training). The published widths (64 ... 512) take minutes per PGD-10 batch on a
laptop CPU; these keep every figure below a few seconds. Inputs, batch 256:
- log-mel path: 128 frames x 64 mels, the published chunk (Linf eps 0.5 dB, step 0.125);
- waveform path: 65024 samples at 32 kHz, the samples of 128 frames of the published front end
  (1024 / 512, 64 mels), attacked through `frontend.log_mel` (eps 0.002, step 0.0005, [-1, 1]).
References measured in the same run: the same attack jitted per example and called in a Python
loop over `LOOP_EXAMPLES` clips, and a PyTorch implementation of the same model and attacks
(torchattacks' algorithm: one batched autograd call per step), when torch can be imported here
or from `--torch-python` (another interpreter with torch and numpy; torch is never a dependency
of soundjax).

On CPU the batched attack costs about as much per example as the per-example loop (x0.8-1.6
measured): the work is in the convolutions, which XLA:CPU runs about as efficiently for one
128 x 64 example as for 256. The bench measures that ceiling first: the per-example time of
the model's input gradient (one attack step) at batch 1 ... 256; no batched attack can beat the
loop by more than their best ratio (x1.0-1.4 on 2 cores here, far from x20; accelerators
are where batching pays). What matters on XLA:CPU is keeping the attack loop out of the compiled
program: `attacks.iterative` traces up to 20 steps straight, as a `lax.fori_loop` made PGD-10
about 5x slower here.

Run: `.venv/bin/python scripts/bench_attacks.py [--torch-python=/tmp/torchvenv/bin/python]`
or `TORCH_PYTHON=... python scripts/bench.py attacks` (about 2.5 minutes on 2 CPU cores).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BATCH = 256
LOOP_EXAMPLES = 8
NUM_CLASSES = 41
CHANNELS = (8, 16, 32, 64)
FRAMES, N_MELS = 128, 64
FRONTEND = dict(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=N_MELS)
SAMPLES = (FRAMES - 1) * FRONTEND["hop_length"]  # centred frames: 1 + samples // hop = FRAMES
# path -> (per-example input shape, Linf eps, PGD step size, bounds)
PATHS = {"log-mel": ((FRAMES, N_MELS), 0.5, 0.125, None),
         "waveform": ((SAMPLES,), 0.002, 0.0005, (-1.0, 1.0))}
PGD_STEPS = 10


def inputs(path: str):
  """Deterministic inputs and labels of one path, shared by the JAX and torch benchmarks."""
  shape = PATHS[path][0]
  rng = np.random.default_rng(0)
  scale = 10.0 if path == "log-mel" else 0.1  # dB-like spread / audio amplitude
  x = (scale * rng.standard_normal((BATCH,) + shape)).astype(np.float32)
  if path == "waveform":
    x = np.clip(x, -1.0, 1.0)
  return x, rng.integers(0, NUM_CLASSES, BATCH).astype(np.int32)


def attack_settings(path: str):
  _, eps, step, bounds = PATHS[path]
  return {"fgsm": dict(eps=eps, bounds=bounds),
          f"pgd-{PGD_STEPS}": dict(eps=eps, step_size=step, num_steps=PGD_STEPS, bounds=bounds)}


def jax_main(filterbank_path: str) -> None:
  """The JAX figures; writes the front end's mel filterbank for the torch benchmark."""
  import jax  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(Path(__file__).resolve().parent))
  from benchlib import batching_ceiling, report, seconds_per_call  # pylint: disable=g-import-not-at-top

  from soundjax import attacks, frontend, losses, models  # pylint: disable=g-import-not-at-top

  np.save(filterbank_path, frontend.mel_filterbank(  # [bins, mels]
      sample_rate=FRONTEND["sample_rate"], n_fft=FRONTEND["n_fft"], n_mels=N_MELS
  ).astype(np.float32))
  model = models.VGG(num_classes=NUM_CLASSES, channels=CHANNELS)
  variables = model.init(jax.random.key(0), np.zeros((1, FRAMES, N_MELS), np.float32))
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; VGG {CHANNELS}, batch {BATCH}")
  for path in PATHS:
    log_mel = frontend.log_mel(**FRONTEND, precise=False) if path == "waveform" else None
    loss_fn = losses.softmax_cross_entropy(losses.model_logits(model, frontend=log_mel))
    x, y = inputs(path)
    keys = jax.random.split(jax.random.key(1), BATCH)
    print(f"{path}: per-example cost of one attack step against the batch size")
    batching_ceiling(loss_fn, variables, x, y)
    for name, kwargs in attack_settings(path).items():
      attack = (attacks.fgsm if name == "fgsm" else attacks.pgd)(loss_fn, **kwargs)
      one = jax.jit(attack)

      def loop(params, xs, ys, ks):
        return [one(params, *example) for example in zip(xs, ys, ks)]

      reference = seconds_per_call(loop, variables, x[:LOOP_EXAMPLES], y[:LOOP_EXAMPLES],
                                   keys[:LOOP_EXAMPLES], repeats=1)
      report(f"{path} {name} per-example loop (reference)", LOOP_EXAMPLES, reference)
      batched = jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))
      seconds = seconds_per_call(batched, variables, x, y, keys, repeats=1)
      report(f"{path} {name} jit(vmap) batch {BATCH}", BATCH, seconds,
             reference * BATCH / LOOP_EXAMPLES)


def torch_main(filterbank_path: str) -> None:
  """The same model and attacks in PyTorch (CPU), timed the same way."""
  import time  # pylint: disable=g-import-not-at-top

  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  def vgg() -> nn.Module:
    layers, width = [], 1
    for features in CHANNELS:
      for _ in range(2):
        layers += [nn.Conv2d(width, features, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(features)]
        width = features
      layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, NUM_CLASSES)).eval()

  filterbank = torch.from_numpy(np.load(filterbank_path))
  window = torch.hann_window(FRONTEND["n_fft"], periodic=True)

  def log_mel(x):  # librosa power_to_db(melspectrogram(...), ref=1.0, top_db=80.0)
    spec = torch.stft(x, FRONTEND["n_fft"], FRONTEND["hop_length"], window=window,
                      center=True, pad_mode="constant", return_complex=True)
    mel = torch.matmul((spec.abs() ** 2).transpose(-1, -2), filterbank)  # [batch, frames, mels]
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    return torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - 80.0)

  def pgd(model, features, x, y, *, eps, step_size, num_steps, bounds, random_start):
    lo, hi = bounds if bounds else (-float("inf"), float("inf"))
    x_adv = x + (torch.empty_like(x).uniform_(-eps, eps) if random_start else 0)
    x_adv = torch.clamp(x_adv, lo, hi).detach()
    for _ in range(num_steps):
      x_adv.requires_grad_(True)
      loss = nn.functional.cross_entropy(model(features(x_adv)[:, None]), y, reduction="sum")
      grad, = torch.autograd.grad(loss, x_adv)
      x_adv = x_adv.detach() + step_size * grad.sign()
      x_adv = torch.clamp(x + torch.clamp(x_adv - x, -eps, eps), lo, hi).detach()
    return x_adv

  def seconds_per_call(fn, *args, repeats):
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
      start = time.perf_counter()
      fn(*args)
      best = min(best, time.perf_counter() - start)
    return best

  torch.manual_seed(0)
  model = vgg()
  print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; same VGG and batch")
  for path in PATHS:
    features = log_mel if path == "waveform" else (lambda x: x)
    x, y = (torch.from_numpy(a).long() if a.dtype == np.int32 else torch.from_numpy(a)
            for a in inputs(path))
    for name, kwargs in attack_settings(path).items():
      settings = (dict(kwargs, step_size=kwargs["eps"], num_steps=1, random_start=False)
                  if name == "fgsm" else dict(kwargs, random_start=True))
      seconds = seconds_per_call(lambda x, y: pgd(model, features, x, y, **settings), x, y,
                                 repeats=1)
      line = f"torch {path} {name} batch {BATCH}"
      print(f"{line:<48s} {BATCH / seconds:12.1f} examples/s  ({seconds * 1e3:9.1f} ms)",
            flush=True)


def main(argv) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                      help="interpreter with torch for the torch figures ($TORCH_PYTHON)")
  parser.add_argument("--torch-only", metavar="FILTERBANK", help=argparse.SUPPRESS)
  args, _ = parser.parse_known_args(argv[1:])  # scripts/bench.py passes its own arguments
  if args.torch_only:  # the child process: torch and numpy only, no JAX or soundjax
    torch_main(args.torch_only)
    return
  with tempfile.TemporaryDirectory() as folder:
    filterbank = os.path.join(folder, "mel_filterbank.npy")
    jax_main(filterbank)
    if importlib.util.find_spec("torch") is not None:
      torch_main(filterbank)
    elif args.torch_python:
      subprocess.run([args.torch_python, __file__, f"--torch-only={filterbank}"], check=True)
    else:
      print("torch is not importable and --torch-python was not given: no torch figures.")


if __name__ == "__main__":
  main(sys.argv)
