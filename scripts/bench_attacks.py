"""Throughput of batched FGSM and PGD-10 against torchattacks (the library) on the same model,
weights and inputs, with the outputs compared; and against a per-example Python loop.

Victims (random weights and BatchNorm statistics: costs do not depend on training):
- `vgg`: the VGG-style victim (`models.VGG`: [Conv 3x3 + ReLU + BN] x2 + 2x2 max-pool per block,
  global average, Dense) with channels (8, 16, 32, 64), 41 classes, batch 256 with --full and 32
  by default. The published widths (64 ... 512) take minutes per PGD-10 batch on a laptop CPU;
  these keep every figure below a few seconds. It is attacked on two paths (groups `log-mel/*`,
  `waveform/*`):
  - log-mel: 128 frames x 64 mels, the published chunk (Linf eps 0.5 dB, step 0.125);
  - waveform: 65024 samples at 32 kHz, the samples of 128 frames of the published front end
    (1024 / 512, 64 mels), attacked through `frontend.log_mel` (eps 0.002, step 0.0005, [-1, 1]).
- `cnn` (groups `cnn/*`): a plain CNN of four 3x3 stride-2 convolutions + ReLU (16 ... 128
  channels), global average, Dense, on 128 x 64 log-mels, issue #11's second workload (batch 128
  with --full, 64 by default to keep the default run under 5 minutes on 2 loaded cores).
PGD starts at the clean input (`random_start=False` on both sides; a random start costs one
uniform draw beside ten gradient steps) so that both libraries' outputs can be compared.

The reference is torchattacks (`torchattacks.FGSM`, `torchattacks.PGD`) on the same model in
PyTorch with the same weights, run in another interpreter with torch, numpy and torchattacks
(`--torch-python`, or this one when it has torch; neither is a dependency of soundjax) that
serves one attack per request, so that its runs interleave with JAX's. Without torchattacks
there, a copy of its algorithm (`_torchattacks_pgd`) runs instead and the reference column says
so; without torch the column says there is none. torchattacks assumes inputs in [0, 1]
(`torch.clamp(x, 0, 1)` after every step); log-mels are unbounded and the waveform is in [-1, 1].
The convention here: torchattacks attacks `u = (x - lo) / scale` in [0, 1] through the model
`u -> model(lo + scale * u)` with `eps / scale` and `step / scale`, where `[lo, lo + scale]` is
the attack's box: [-1, 1] for the waveform, and for log-mels the batch's range widened by eps on
each side, so that the clamp never binds (soundjax attacks them unbounded). The outputs, mapped
back to `x`, are compared with soundjax's; each row's note gives the largest difference and the
bench fails when they disagree (`check_agreement`). The gradient's sign can differ between the
libraries where a gradient element is within float rounding of 0; such an element moves by
`2 * step` (PGD's later steps then diverge a little from there), so a few are allowed.

With --full (and --tiny), the same attack jitted per example and called in a Python loop over a
few clips is a second workload of each VGG group. On CPU the batched attack costs about as much
per example as the loop (x0.8-1.6 measured): the work is in the convolutions, which XLA:CPU runs
about as efficiently for one 128 x 64 example as for 256. The `input-gradient` groups measure that
ceiling: the per-example time of the model's input gradient (one attack step) at growing batch
sizes against one-example calls; no batched attack can beat the loop by more than their best
ratio (x1.0-1.4 on 2 cores here; accelerators are where batching pays). What matters on XLA:CPU
is keeping the attack loop out of the compiled program: `attacks.iterative` traces up to 20 steps
straight, as a `lax.fori_loop` made PGD-10 about 5x slower here.

Against torchattacks the ceiling is set by how fast XLA:CPU runs the convolutions: each attack
row gives its fraction of the matmul peak and its note torchattacks' fraction on the same FLOPs
(XLA's count of the same attack). The `cnn/fgsm` group adds the attack's convolutions as bare
im2col matrix products (`gemm_ceiling`): what any formulation of them could reach if patch
gathers and scatters cost nothing. Measured on 2 cores (jax 0.10.2, torch 2.13 with oneDNN):
XLA's convolutions run the attacks at 0.18-0.24 of the peak, torchattacks at 0.11-0.19 on the
VGG (its max-pool and BatchNorm backward are slow) and 0.27-0.32 on the CNN, the bare products at
0.62-0.79.
An explicit im2col convolution (strided slices, concatenation, one product) ran the CNN's FGSM
1.12x the native one, not the 2.5x it would need: its gathers and scatters are the cost. XLA's
CPU flags `xla_cpu_use_onednn`, `xla_cpu_use_xnnpack` and XNNPACK graph fusion changed the CNN's
rates by less than the run-to-run noise. Measured on the CNN's input gradient alone (batch 64,
38-49 ms with XLA's own convolutions): routing them to oneDNN, XNNPACK or YNNPACK
(`xla_cpu_experimental_{onednn,xnn,ynn}_fusion_type=individual_convolution`) took 35-46 ms, and
a stride-2 convolution whose input gradient is a stride-1 convolution of the upstream gradient
into the input's 2x2 phases (a custom VJP in place of XLA's dilated convolution) 33 ms against
38 ms in the same run: within the noise, nowhere near the 2.5x needed.

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

# victim -> examples per batch at each size
BATCH = {"vgg": {"tiny": 2, "default": 32, "full": 256},
         "cnn": {"tiny": 2, "default": 64, "full": 128}}
# The loop's own compiles (a PGD-10 compiles for 10 s here) are left out of the default's budget.
LOOP_EXAMPLES = {"tiny": 1, "default": 0, "full": 8}
FRAMES = {"tiny": 16, "default": 128, "full": 128}
GRADIENT_BATCHES = {"tiny": (1, 2), "default": (1, 32), "full": (1, 4, 16, 64, 256)}
NUM_CLASSES = 41
CHANNELS = {"vgg": (8, 16, 32, 64), "cnn": (16, 32, 64, 128)}
N_MELS = 64
FRONTEND = dict(sample_rate=32000, n_fft=1024, hop_length=512, n_mels=N_MELS)
# path -> (Linf eps, PGD step size, bounds)
PATHS = {"log-mel": (0.5, 0.125, None), "waveform": (0.002, 0.0005, (-1.0, 1.0))}
# group prefix -> (victim, input path)
TARGETS = {"log-mel": ("vgg", "log-mel"), "waveform": ("vgg", "waveform"),
           "cnn": ("cnn", "log-mel")}
PGD_STEPS = 10
# Two outputs' elements are apart when they differ by more than this many eps: torchattacks'
# [0, 1] space rounds `x` to ~1e-7 of the box (measured: up to 4e-5 eps after PGD-10), a step
# is eps / 4.
AGREEMENT_ATOL = 1e-3
# attack -> the fraction of elements that may be apart. FGSM: gradient signs within rounding of
# 0 (measured: 8e-5 on the waveform, 0 on log-mels). PGD: once one element's sign differs (or a
# max-pool near-tie breaks the other way), that example's later steps take another path
# (measured: 1 % of the VGG's log-mel elements, 10 % of its waveform's, 0 on the CNN, which has
# no pool). Other weights or a wrong sign put half or all of them apart.
AGREEMENT_FRACTION = {"fgsm": 1e-3, f"pgd-{PGD_STEPS}": 0.2}


def inputs(victim: str, path: str, size: str):
  """Deterministic inputs and labels of one victim and path, shared by the JAX and torch sides."""
  frames, batch = FRAMES[size], BATCH[victim][size]
  # Centred frames: 1 + samples // hop = frames.
  shape = (frames, N_MELS) if path == "log-mel" else ((frames - 1) * FRONTEND["hop_length"],)
  rng = np.random.default_rng(0)
  scale = 10.0 if path == "log-mel" else 0.1  # dB-like spread / audio amplitude
  x = (scale * rng.standard_normal((batch,) + shape)).astype(np.float32)
  if path == "waveform":
    x = np.clip(x, -1.0, 1.0)
  return x, rng.integers(0, NUM_CLASSES, batch).astype(np.int32)


def attack_settings(path: str) -> dict:
  """`{attack: keyword arguments}` of soundjax's factory for one input path."""
  eps, step, bounds = PATHS[path]
  return {"fgsm": dict(eps=eps, bounds=bounds),
          f"pgd-{PGD_STEPS}": dict(eps=eps, step_size=step, num_steps=PGD_STEPS, bounds=bounds,
                                   random_start=False)}


def unit_box(path: str, x: np.ndarray):
  """`(lo, scale)`: torchattacks attacks `(x - lo) / scale` in [0, 1] (see the docstring)."""
  eps, _, bounds = PATHS[path]
  lo, hi = bounds or (float(x.min()) - eps, float(x.max()) + eps)
  return lo, hi - lo


def check_agreement(ours, theirs: np.ndarray, *, eps: float, attack: str) -> str:
  """The note comparing two libraries' adversarial examples of `attack`; raises when they
  disagree.

  Raises:
    AssertionError: when more than `AGREEMENT_FRACTION[attack]` of the elements differ by more
      than `AGREEMENT_ATOL * eps`, or any by more than `2 * eps` (outside both budgets).
  """
  difference = np.abs(np.asarray(ours, np.float64) - theirs)
  apart = np.mean(difference > AGREEMENT_ATOL * eps)
  note = (f"max |soundjax - torch| {difference.max():.3g} (eps {eps:g}); {apart:.3%} of "
          f"elements apart by > {AGREEMENT_ATOL:g} eps")
  if apart > AGREEMENT_FRACTION[attack] or difference.max() > 2 * eps * (1 + AGREEMENT_ATOL):
    raise AssertionError(f"soundjax and torch adversarial examples of {attack} disagree: {note}")
  return note


def torch_layers(victim: str, variables) -> list:
  """The victim's Flax variables as the tensors of its torch copy (`torch_serve`), one dict per
  layer holding parameters (Conv2d, BatchNorm2d, Linear) in call order, in torch's layouts."""
  params = variables["params"]

  def conv(p):  # [kh, kw, in, out] -> [out, in, kh, kw]
    return dict(weight=np.transpose(p["kernel"], (3, 2, 0, 1)), bias=p["bias"])

  dense = dict(weight=np.transpose(params["Dense_0"]["kernel"]), bias=params["Dense_0"]["bias"])
  if victim == "cnn":
    return [conv(params[f"Conv_{i}"]) for i in range(len(CHANNELS[victim]))] + [dense]
  layers = []
  for i in range(2 * len(CHANNELS[victim])):
    unit, stats = (v["ConvStack_0"][f"ConvBNReLU_{i}"] for v in (params, variables["batch_stats"]))
    norm, stats = unit["BatchNorm_0"], stats["BatchNorm_0"]
    layers += [conv(unit["Conv_0"]), dict(weight=norm["scale"], bias=norm["bias"],
                                          running_mean=stats["mean"], running_var=stats["var"])]
  return layers + [dense]


def _torchattacks_pgd(model, images, labels, *, eps: float, alpha: float, steps: int):
  """torchattacks 3.5.1's `PGD(..., random_start=False).forward` (and `FGSM`'s, with one step
  of `alpha = eps`), for an interpreter without torchattacks."""
  import torch  # pylint: disable=g-import-not-at-top

  loss = torch.nn.CrossEntropyLoss()
  adv_images = images.clone().detach()
  for _ in range(steps):
    adv_images.requires_grad = True
    grad, = torch.autograd.grad(loss(model(adv_images), labels), adv_images)
    adv_images = adv_images.detach() + alpha * grad.sign()
    delta = torch.clamp(adv_images - images, min=-eps, max=eps)
    adv_images = torch.clamp(images + delta, min=0, max=1).detach()
  return adv_images


def torch_serve(folder: str, size: str) -> None:
  """The same victims and attacks in PyTorch (CPU), with torchattacks where it is installed.

  Reads `folder`/mel_filterbank.npy and `folder`/<victim>.npz (`torch_layers`). Each stdin line
  is `run GROUP` (runs that group's attack, keeps its output) or `save FILE` (writes the last
  output, mapped back from [0, 1] to `x`, to FILE as .npy); each is answered `done` on stdout.
  Needs torch and numpy only, no JAX.
  """
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  try:
    import torchattacks  # pylint: disable=g-import-not-at-top
  except ImportError:
    torchattacks = None

  @functools.lru_cache(maxsize=None)
  def victim_model(victim: str) -> nn.Module:
    layers, width = [], 1
    for features in CHANNELS[victim]:
      if victim == "cnn":
        layers += [nn.Conv2d(width, features, 3, stride=2, padding=1), nn.ReLU()]
        width = features
        continue
      for _ in range(2):  # Flax's BatchNorm epsilon is Keras' (`layers.KERAS_BN_EPSILON`)
        layers += [nn.Conv2d(width, features, 3, padding=1), nn.ReLU(),
                   nn.BatchNorm2d(features, eps=1e-3)]
        width = features
      layers.append(nn.MaxPool2d(2))
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(width, NUM_CLASSES)).eval()
    saved = np.load(os.path.join(folder, f"{victim}.npz"))
    with_weights = [m for m in model if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    with torch.no_grad():
      for key in saved.files:
        layer, name = key.split(".")
        getattr(with_weights[int(layer)], name).copy_(torch.from_numpy(saved[key]))
    return model

  filterbank = torch.from_numpy(np.load(os.path.join(folder, "mel_filterbank.npy")))
  window = torch.hann_window(FRONTEND["n_fft"], periodic=True)

  def log_mel(x):  # librosa power_to_db(melspectrogram(...), ref=1.0, top_db=80.0)
    spec = torch.stft(x, FRONTEND["n_fft"], FRONTEND["hop_length"], window=window,
                      center=True, pad_mode="constant", return_complex=True)
    mel = torch.matmul((spec.abs() ** 2).transpose(-1, -2), filterbank)  # [batch, frames, mels]
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    return torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - 80.0)

  class UnitBox(nn.Module):
    """`u -> model(features(lo + scale * u)[:, None])`: the victim on torchattacks' [0, 1]."""

    def __init__(self, model, features, lo, scale):
      super().__init__()
      self.model, self.features, self.lo, self.scale = model, features, lo, scale

    def forward(self, u):
      return self.model(self.features(self.lo + self.scale * u)[:, None])

  @functools.lru_cache(maxsize=None)
  def attack(group: str):
    """`(run, to_x)`: the group's attack on its [0, 1] inputs and the map back to `x`."""
    prefix, name = group.split("/")
    victim, path = TARGETS[prefix]
    x, y = inputs(victim, path, size)
    lo, scale = unit_box(path, x)
    features = log_mel if path == "waveform" else nn.Identity()
    model = UnitBox(victim_model(victim), features, lo, scale)
    u, y = torch.from_numpy((x - lo) / scale), torch.from_numpy(y).long()
    kwargs = attack_settings(path)[name]
    eps, alpha = kwargs["eps"] / scale, kwargs.get("step_size", kwargs["eps"]) / scale
    steps = kwargs.get("num_steps", 1)
    if torchattacks is None:
      run = functools.partial(_torchattacks_pgd, model, eps=eps, alpha=alpha, steps=steps)
    elif name == "fgsm":
      run = torchattacks.FGSM(model, eps=eps)
    else:
      run = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps,
                             random_start=kwargs["random_start"])
    return functools.partial(run, u, y), lambda u: (lo + scale * u).numpy()

  library = (f"torchattacks {torchattacks.__version__}" if torchattacks
             else "torchattacks' algorithm copied (no torchattacks)")
  print(f"{library}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
  last = None
  for line in sys.stdin:
    request, argument = line.split()
    if request == "run":
      run, to_x = attack(argument)
      last = run(), to_x
    else:
      np.save(argument, last[1](last[0]))
    print("done", flush=True)


class TorchServer:
  """The torch attacks served by `torch_serve` in the interpreter `python`."""

  def __init__(self, python: str, folder: str, size: str):
    # OpenMP threads that spin while they wait run torch 100x slower on a loaded machine (2.2 s
    # against 5 ms per tiny FGSM measured here); passive waiting costs nothing when it is quiet.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    self.folder = folder
    self.process = subprocess.Popen(
        [python, os.path.abspath(__file__), "--torch-serve", folder, size],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    self.version = self.process.stdout.readline().strip()  # "" when torch failed to start
    atexit.register(self.process.kill)

  def _request(self, line: str) -> None:
    self.process.stdin.write(f"{line}\n")
    self.process.stdin.flush()
    if self.process.stdout.readline().strip() != "done":
      raise RuntimeError(f"the torch process ({self.process.args[0]}) stopped")

  def run(self, group: str) -> None:
    """Runs `group`'s attack (its output stays in the server)."""
    self._request(f"run {group}")

  def last_output(self) -> np.ndarray:
    """The output of the last `run`, in the inputs' own space."""
    path = os.path.join(self.folder, "output.npy")
    self._request(f"save {path}")
    return np.load(path)


def _random_batch_norm(variables, seed: int = 0):
  """`variables` with every BatchNorm's statistics and affine drawn at random (at init they are
  the identity, which would hide a wrong transfer to torch)."""
  import jax  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)
  draw = {"mean": lambda n: rng.normal(0.0, 0.5, n), "var": lambda n: rng.uniform(0.5, 2.0, n),
          "scale": lambda n: rng.uniform(0.5, 1.5, n), "bias": lambda n: rng.normal(0.0, 0.1, n)}

  def redraw(path, value):
    names = [getattr(key, "key", "") for key in path]
    if not any(name.startswith("BatchNorm") for name in names):
      return value
    return draw[names[-1]](value.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(redraw, variables)


def groups(size: str, args) -> dict:
  """The `<path>/input-gradient` groups of the VGG and the `<prefix>/<attack>` groups."""
  import benchlib  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from soundjax import attacks, frontend, losses, models  # pylint: disable=g-import-not-at-top

  repeats, loop_examples = benchlib.REPEATS[size], LOOP_EXAMPLES[size]

  class Stride2CNN(nn.Module):
    """The plain CNN victim: 3x3 stride-2 convolutions + ReLU, global average, Dense. Padding
    is 1 on every side, as torch's `padding=1` (Flax's "SAME" pads stride 2 on one side only)."""

    @nn.compact
    def __call__(self, x, train=False):
      del train
      x = x[..., None]
      for features in CHANNELS["cnn"]:
        x = nn.relu(nn.Conv(features, (3, 3), strides=2, padding=1)(x))
      return nn.Dense(NUM_CLASSES)(jnp.mean(x, axis=(1, 2)))

  @functools.lru_cache(maxsize=None)
  def victim(name: str):
    model = (models.VGG(num_classes=NUM_CLASSES, channels=CHANNELS["vgg"]) if name == "vgg"
             else Stride2CNN())
    variables = model.init(jax.random.key(0), np.zeros((1, FRAMES[size], N_MELS), np.float32))
    return model, jax.device_get(_random_batch_norm(variables))

  @functools.lru_cache(maxsize=None)
  def setup(prefix: str):
    name, path = TARGETS[prefix]
    model, variables = victim(name)
    log_mel = frontend.log_mel(**FRONTEND, precise=False) if path == "waveform" else None
    loss_fn = losses.softmax_cross_entropy(losses.model_logits(model, frontend=log_mel))
    x, y = inputs(name, path, size)
    return loss_fn, variables, x, y, jax.random.split(jax.random.key(1), len(x))

  @functools.lru_cache(maxsize=None)
  def torch_server():
    """The torch server, or the reason there is none."""
    python = args.torch_python or (
        sys.executable if importlib.util.find_spec("torch") is not None else None)
    if python is None:
      return "none: no torch here and no --torch-python"
    folder = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    np.save(os.path.join(folder, "mel_filterbank.npy"), frontend.mel_filterbank(  # [bins, mels]
        sample_rate=FRONTEND["sample_rate"], n_fft=FRONTEND["n_fft"], n_mels=N_MELS
    ).astype(np.float32))
    for name in CHANNELS:
      np.savez(os.path.join(folder, f"{name}.npz"), **{
          f"{i}.{field}": np.asarray(value) for i, layer in enumerate(
              torch_layers(name, victim(name)[1])) for field, value in layer.items()})
    served = TorchServer(python, folder, size)
    return served if served.version else f"none: torch did not start in {python}"

  def input_gradient(path: str) -> list:
    loss_fn, variables, x, y, _ = setup(path)
    return benchlib.batching_ceiling(f"attacks/{path}", loss_fn, variables, x, y,
                                     sizes=GRADIENT_BATCHES[size], repeats=repeats)

  def gemm_ceiling(batch: int):
    """The CNN's FGSM as nothing but matrix products: per convolution, the forward and the
    input-gradient products of its im2col form ([b * h' * w', 9 c] x [9 c, c'] and its transpose
    product), without the patch gathers, scatters, ReLUs and pooling around them. Its FLOPs are
    the attack's convolution FLOPs; its rate bounds any attack of XLA's convolutions (which are
    such products, or slower) from above, so its ratio to torchattacks is the ceiling of the
    attack's ratio on this machine."""
    rng, shapes = np.random.default_rng(0), []
    height, width, channels = FRAMES[size], N_MELS, 1
    for features in CHANNELS["cnn"]:
      height, width = (height + 1) // 2, (width + 1) // 2
      shapes.append((batch * height * width, 9 * channels, features))
      channels = features
    operands = [(rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32),
                 rng.standard_normal((m, n), np.float32)) for m, k, n in shapes]

    def products(operands):  # one scalar per product keeps every product alive
      return sum(jnp.sum(patches @ kernel) + jnp.sum(upstream @ kernel.T)
                 for patches, kernel, upstream in operands)

    return benchlib.Workload(f"attacks/cnn/fgsm im2col GEMMs only b{batch} (ceiling)",
                             jax.jit(products), (operands,), batch)

  def attack(prefix: str, name: str) -> list:
    loss_fn, variables, x, y, keys = setup(prefix)
    kwargs = attack_settings(TARGETS[prefix][1])[name]
    group, batch = f"{prefix}/{name}", len(x)
    served = torch_server()
    check = None if isinstance(served, str) else (
        lambda out: check_agreement(out, served.last_output(), eps=kwargs["eps"], attack=name))
    attack_fn = (attacks.fgsm if name == "fgsm" else attacks.pgd)(loss_fn, **kwargs)
    workloads = [benchlib.Workload(f"attacks/{group} jit(vmap) b{batch}",
                                   jax.jit(jax.vmap(attack_fn, in_axes=(None, 0, 0, 0))),
                                   (variables, x, y, keys), batch, check=check,
                                   reference_same_flops=True)]
    if prefix == "cnn" and name == "fgsm":
      workloads.append(gemm_ceiling(batch))
    if loop_examples and prefix in PATHS:
      one = jax.jit(attack_fn)
      head = (x[:loop_examples], y[:loop_examples], keys[:loop_examples])
      workloads.append(benchlib.Workload(
          f"attacks/{group} loop of jit(one example)",
          lambda: [one(variables, *example) for example in zip(*head)], examples=loop_examples))
    if isinstance(served, str):
      return benchlib.compare(workloads, repeats=repeats, no_reference=served)
    reference = benchlib.Workload(f"{served.version.split(',')[0]} b{batch}",
                                  lambda: served.run(group), examples=batch)
    return benchlib.compare(workloads, reference, repeats=repeats)

  available = {f"{path}/input-gradient": functools.partial(input_gradient, path)
               for path in PATHS}
  for prefix, (_, path) in TARGETS.items():
    available.update({f"{prefix}/{name}": functools.partial(attack, prefix, name)
                      for name in attack_settings(path)})
  return available


def main(argv) -> None:
  served = argparse.ArgumentParser(add_help=False)
  served.add_argument("--torch-serve", nargs=2, metavar=("FOLDER", "SIZE"))
  serve, _ = served.parse_known_args(argv[1:])
  if serve.torch_serve:  # the child process: torch and numpy only, no JAX or soundjax
    torch_serve(*serve.torch_serve)
    return
  import benchlib  # pylint: disable=g-import-not-at-top

  def add_arguments(parser):
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                        help="interpreter with torch (and torchattacks) for the reference "
                        "($TORCH_PYTHON)")

  benchlib.run_suite("attacks", groups, argv, __doc__.splitlines()[0], add_arguments)


if __name__ == "__main__":
  main(sys.argv)
