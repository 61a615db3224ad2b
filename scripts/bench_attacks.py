"""Throughput of batched FGSM and PGD-10 against the same attacks in PyTorch (torchattacks'
algorithm), and against a per-example Python loop.

Model: the VGG-style victim (`models.VGG`: [Conv 3x3 + ReLU + BN] x2 + 2x2 max-pool per block,
global average, Dense) with channels (8, 16, 32, 64), 41 classes, random weights (costs do not
depend on training). The published widths (64 ... 512) take minutes per PGD-10 batch on a
laptop CPU; these keep every figure below a few seconds. Inputs (batch 256 with --full, 32 by
default):
- log-mel path: 128 frames x 64 mels, the published chunk (Linf eps 0.5 dB, step 0.125);
- waveform path: 65024 samples at 32 kHz, the samples of 128 frames of the published front end
  (1024 / 512, 64 mels), attacked through `frontend.log_mel` (eps 0.002, step 0.0005, [-1, 1]).
The reference of each attack is a PyTorch implementation of the same model and attack
(torchattacks' algorithm: one batched autograd call per step), run in another interpreter with
torch and numpy (`--torch-python`, or this one when it has torch; torch is never a dependency of
soundjax) that serves one attack per request, so that its runs interleave with JAX's. Without
torch the reference column says so. With --full (and --tiny), the same attack jitted per
example and called in a Python loop over a few clips is a second workload of each group.

On CPU the batched attack costs about as much per example as the per-example loop (x0.8-1.6
measured): the work is in the convolutions, which XLA:CPU runs about as efficiently for one
128 x 64 example as for 256. The `input-gradient` groups measure that ceiling: the per-example
time of the model's input gradient (one attack step) at growing batch sizes against one-example
calls; no batched attack can beat the loop by more than their best ratio (x1.0-1.4 on 2 cores
here, far from x20; accelerators are where batching pays). What matters on XLA:CPU is keeping
the attack loop out of the compiled program: `attacks.iterative` traces up to 20 steps straight,
as a `lax.fori_loop` made PGD-10 about 5x slower here.

Run: `.venv/bin/python scripts/bench_attacks.py [--torch-python=/tmp/torchvenv/bin/python]`
or `TORCH_PYTHON=... python scripts/bench.py --only attacks`.
"""

import argparse
import atexit
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

BATCH = {"tiny": 2, "default": 32, "full": 256}
# The loop's own compiles (a PGD-10 compiles for 10 s here) are left out of the default's budget.
LOOP_EXAMPLES = {"tiny": 1, "default": 0, "full": 8}
FRAMES = {"tiny": 16, "default": 128, "full": 128}
GRADIENT_BATCHES = {"tiny": (1, 2), "default": (1, 32), "full": (1, 4, 16, 64, 256)}
NUM_CLASSES = 41
CHANNELS = (8, 16, 32, 64)
N_MELS = 64
FRONTEND = dict(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=N_MELS)
# path -> (Linf eps, PGD step size, bounds)
PATHS = {"log-mel": (0.5, 0.125, None), "waveform": (0.002, 0.0005, (-1.0, 1.0))}
PGD_STEPS = 10


def inputs(path: str, size: str):
  """Deterministic inputs and labels of one path, shared by the JAX and torch benchmarks."""
  frames = FRAMES[size]
  # Centred frames: 1 + samples // hop = frames.
  shape = (frames, N_MELS) if path == "log-mel" else ((frames - 1) * FRONTEND["hop_length"],)
  rng = np.random.default_rng(0)
  scale = 10.0 if path == "log-mel" else 0.1  # dB-like spread / audio amplitude
  x = (scale * rng.standard_normal((BATCH[size],) + shape)).astype(np.float32)
  if path == "waveform":
    x = np.clip(x, -1.0, 1.0)
  return x, rng.integers(0, NUM_CLASSES, BATCH[size]).astype(np.int32)


def attack_settings(path: str):
  eps, step, bounds = PATHS[path]
  return {"fgsm": dict(eps=eps, bounds=bounds),
          f"pgd-{PGD_STEPS}": dict(eps=eps, step_size=step, num_steps=PGD_STEPS, bounds=bounds)}


def torch_serve(filterbank_path: str, size: str) -> None:
  """The same model and attacks in PyTorch (CPU): runs the attack named on each stdin line
  (`path attack`) and answers `done` on stdout. Needs torch and numpy only, no JAX."""
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

  torch.manual_seed(0)
  model = vgg()
  runs = {}
  for path in PATHS:
    features = log_mel if path == "waveform" else (lambda x: x)
    x, y = (torch.from_numpy(a).long() if a.dtype == np.int32 else torch.from_numpy(a)
            for a in inputs(path, size))
    for name, kwargs in attack_settings(path).items():
      settings = (dict(kwargs, step_size=kwargs["eps"], num_steps=1, random_start=False)
                  if name == "fgsm" else dict(kwargs, random_start=True))
      runs[path, name] = functools.partial(pgd, model, features, x, y, **settings)
  print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
  for line in sys.stdin:
    runs[tuple(line.split())]()
    print("done", flush=True)


class TorchAttacks:
  """The torch attacks served by `torch_serve` in the interpreter `python`."""

  def __init__(self, python: str, filterbank_path: str, size: str):
    # OpenMP threads that spin while they wait run torch 100x slower on a loaded machine (2.2 s
    # against 5 ms per tiny FGSM measured here); passive waiting costs nothing when it is quiet.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    self.process = subprocess.Popen(
        [python, os.path.abspath(__file__), "--torch-serve", filterbank_path, size],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    self.version = self.process.stdout.readline().strip()  # "" when torch failed to start
    atexit.register(self.process.kill)

  def run(self, path: str, name: str) -> None:
    self.process.stdin.write(f"{path} {name}\n")
    self.process.stdin.flush()
    if self.process.stdout.readline().strip() != "done":
      raise RuntimeError(f"the torch process ({self.process.args[0]}) stopped")


def groups(size: str, args) -> dict:
  """The `<path>/input-gradient` and `<path>/<attack>` groups of both paths."""
  import benchlib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top

  from soundjax import attacks, frontend, losses, models  # pylint: disable=g-import-not-at-top

  repeats, batch, loop_examples = benchlib.REPEATS[size], BATCH[size], LOOP_EXAMPLES[size]
  model = models.VGG(num_classes=NUM_CLASSES, channels=CHANNELS)
  variables = model.init(jax.random.key(0), np.zeros((1, FRAMES[size], N_MELS), np.float32))

  @functools.lru_cache(maxsize=None)
  def setup(path: str):
    log_mel = frontend.log_mel(**FRONTEND, precise=False) if path == "waveform" else None
    loss_fn = losses.softmax_cross_entropy(losses.model_logits(model, frontend=log_mel))
    return loss_fn, inputs(path, size), jax.random.split(jax.random.key(1), batch)

  @functools.lru_cache(maxsize=None)
  def torch_attacks():
    """The torch server, or the reason there is none."""
    python = args.torch_python or (
        sys.executable if importlib.util.find_spec("torch") is not None else None)
    if python is None:
      return "none: no torch here and no --torch-python"
    folder = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    filterbank = os.path.join(folder, "mel_filterbank.npy")
    np.save(filterbank, frontend.mel_filterbank(  # [bins, mels]
        sample_rate=FRONTEND["sample_rate"], n_fft=FRONTEND["n_fft"], n_mels=N_MELS
    ).astype(np.float32))
    served = TorchAttacks(python, filterbank, size)
    return served if served.version else f"none: torch did not start in {python}"

  def input_gradient(path: str) -> list:
    loss_fn, (x, y), _ = setup(path)
    return benchlib.batching_ceiling(f"attacks/{path}", loss_fn, variables, x, y,
                                     sizes=GRADIENT_BATCHES[size], repeats=repeats)

  def attack(path: str, name: str) -> list:
    loss_fn, (x, y), keys = setup(path)
    kwargs = attack_settings(path)[name]
    attack_fn = (attacks.fgsm if name == "fgsm" else attacks.pgd)(loss_fn, **kwargs)
    label = f"attacks/{path}/{name}"
    workloads = [benchlib.Workload(f"{label} jit(vmap) b{batch}",
                                   jax.jit(jax.vmap(attack_fn, in_axes=(None, 0, 0, 0))),
                                   (variables, x, y, keys), batch)]
    if loop_examples:
      one = jax.jit(attack_fn)
      head = (x[:loop_examples], y[:loop_examples], keys[:loop_examples])
      workloads.append(benchlib.Workload(
          f"{label} loop of jit(one example)",
          lambda: [one(variables, *example) for example in zip(*head)], examples=loop_examples))
    served = torch_attacks()
    if isinstance(served, str):
      return benchlib.compare(workloads, repeats=repeats, no_reference=served)
    reference = benchlib.Workload(f"PyTorch b{batch} ({served.version})",
                                  lambda: served.run(path, name), examples=batch)
    return benchlib.compare(workloads, reference, repeats=repeats)

  available = {f"{path}/input-gradient": functools.partial(input_gradient, path)
               for path in PATHS}
  for path in PATHS:
    available.update({f"{path}/{name}": functools.partial(attack, path, name)
                      for name in attack_settings(path)})
  return available


def main(argv) -> None:
  served = argparse.ArgumentParser(add_help=False)
  served.add_argument("--torch-serve", nargs=2, metavar=("FILTERBANK", "SIZE"))
  serve, _ = served.parse_known_args(argv[1:])
  if serve.torch_serve:  # the child process: torch and numpy only, no JAX or soundjax
    torch_serve(*serve.torch_serve)
    return
  import benchlib  # pylint: disable=g-import-not-at-top

  def add_arguments(parser):
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                        help="interpreter with torch for the reference ($TORCH_PYTHON)")

  benchlib.run_suite("attacks", groups, argv, __doc__.splitlines()[0], add_arguments)


if __name__ == "__main__":
  main(sys.argv)
