"""Parity of `attacks.auto_attack` with torchattacks' APGD, APGDT, FAB, Square and AutoAttack.

The same weights, inputs and eps on both sides: robust accuracies over a few seeds of each.

The victim is a small MLP on 8 x 8 single-channel "images" in [0, 1] (torchattacks'
convention; its Square needs [N, C, H, W], and square images for L2), 10 classes, random
weights, labels its clean predictions with a tenth flipped. The RNGs differ, so the figures are
compared as distributions (mean and spread over seeds), not bits. soundjax runs its ensemble
(APGD-CE, APGD-T, FAB-T, Square); the torch side runs each torchattacks component alone with
the same settings (FAB-T is `torchattacks.FAB(multi_targeted=True)`, the reference's
`alpha_max`, `eta`, `beta`, 1 restart, `--steps` steps; the cumulative robust accuracy after each
is the share that no component up to it broke, as AutoAttack's order gives) and
`torchattacks.AutoAttack(version="standard")` as published, which runs its APGDs and FAB-T with
torchattacks' default of 10 steps (the reference uses 100).

Run: `.venv/bin/python scripts/parity_auto_attack.py --torch-python=/tmp/torchvenv/bin/python`
(torch and torchattacks in that interpreter; neither is a dependency of soundjax).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SHAPE, HIDDEN, CLASSES = (8, 8), 64, 10
COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")


def problem(num: int, seed: int = 0):
  """MLP weights, inputs [num, 8, 8] in [0, 1] and labels (a tenth not the prediction)."""
  rng = np.random.default_rng(seed)
  dim = SHAPE[0] * SHAPE[1]
  weights = {"w1": rng.normal(0, 3 / np.sqrt(dim), (dim, HIDDEN)), "b1": rng.normal(0, 1, HIDDEN),
             "w2": rng.normal(0, 1 / np.sqrt(HIDDEN), (HIDDEN, CLASSES)),
             "b2": np.zeros(CLASSES)}
  weights = {k: v.astype(np.float32) for k, v in weights.items()}
  x = rng.uniform(0, 1, (num,) + SHAPE).astype(np.float32)
  logits = np.tanh(x.reshape(num, -1) @ weights["w1"] + weights["b1"]) @ weights["w2"]
  y = np.argmax(logits + weights["b2"], axis=-1)
  flip = rng.random(num) < 0.1
  y = np.where(flip, (y + 1) % CLASSES, y).astype(np.int64)
  return weights, x, y


def soundjax_side(weights, x, y, args):
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  from soundjax import attacks, losses  # pylint: disable=import-outside-toplevel

  def logits_fn(params, v):
    return jnp.tanh(jnp.ravel(v) @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]

  ensemble = attacks.auto_attack(
      logits_fn, eps=args.eps, norm=args.norm, ce_loss=losses.softmax_cross_entropy(logits_fn),
      dlr_targeted_loss=losses.dlr_targeted_loss(logits_fn), num_steps=args.steps,
      num_queries=args.queries, bounds=(0.0, 1.0))
  run = jax.jit(lambda params, x, y, keys: attacks.robust_accuracy(
      jax.vmap(ensemble, in_axes=(None, 0, 0, 0))(params, x, y, keys)))
  # Square's windows span the first two axes: [H, W, C] per example.
  x = jnp.asarray(x)[..., None]
  figures = []
  for seed in range(args.seeds):
    keys = jax.random.split(jax.random.key(seed), len(y))
    result = run(weights, x, jnp.asarray(y, jnp.int32), keys)
    figures.append({k: float(v) for k, v in result.items()})
  return figures


def torch_side(path: str) -> None:
  """In the torch interpreter: every attack on the problem saved at `path`, as JSON on stdout."""
  import torch  # pylint: disable=import-outside-toplevel
  import torchattacks  # pylint: disable=import-outside-toplevel

  saved = np.load(path)
  args = json.loads(str(saved["args"]))
  w = {k: torch.from_numpy(saved[k]) for k in ("w1", "b1", "w2", "b2")}

  class MLP(torch.nn.Module):
    def forward(self, v):
      return torch.tanh(v.flatten(1) @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]

  model = MLP().eval()
  x, y = torch.from_numpy(saved["x"])[:, None], torch.from_numpy(saved["y"])
  norm = {"linf": "Linf", "l2": "L2"}[args["norm"]]
  predict = lambda v: model(v).argmax(-1)
  figures = []
  for seed in range(args["seeds"]):
    torch.manual_seed(seed)
    made = {
        "apgd-ce": torchattacks.APGD(model, norm=norm, eps=args["eps"], steps=args["steps"],
                                     loss="ce", seed=seed),
        "apgd-t": torchattacks.APGDT(model, norm=norm, eps=args["eps"], steps=args["steps"],
                                     n_classes=CLASSES, seed=seed),
        "fab-t": torchattacks.FAB(model, norm=norm, eps=args["eps"], steps=args["steps"],
                                  n_restarts=1, alpha_max=0.1, eta=1.05, beta=0.9, seed=seed,
                                  multi_targeted=True, n_classes=CLASSES),
        "square": torchattacks.Square(model, norm=norm, eps=args["eps"],
                                      n_queries=args["queries"], seed=seed),
    }
    robust = (predict(x) == y)
    result = {"clean": robust.float().mean().item()}
    for name in COMPONENTS:
      robust &= predict(made[name](x, y)) == y
      result[name] = robust.float().mean().item()
    published = torchattacks.AutoAttack(model, norm=norm, eps=args["eps"], n_classes=CLASSES,
                                        seed=seed)
    result["autoattack_published"] = (predict(published(x, y)) == y).float().mean().item()
    figures.append(result)
  print(json.dumps(figures))


def _spread(values) -> str:
  return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON", sys.executable))
  parser.add_argument("--torch-side", help=argparse.SUPPRESS)
  parser.add_argument("--num", type=int, default=256)
  parser.add_argument("--norm", default="linf", choices=("linf", "l2"))
  parser.add_argument("--eps", type=float, default=0.03)
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--queries", type=int, default=5000)
  parser.add_argument("--seeds", type=int, default=3)
  args = parser.parse_args()
  if args.torch_side:
    torch_side(args.torch_side)
    return
  weights, x, y = problem(args.num)
  ours = soundjax_side(weights, x, y, args)
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "problem.npz")
    settings = {k: getattr(args, k) for k in ("norm", "eps", "steps", "queries", "seeds")}
    np.savez(path, x=x, y=y, args=json.dumps(settings), **weights)
    theirs = json.loads(subprocess.run(
        [args.torch_python, os.path.abspath(__file__), "--torch-side", path], check=True,
        capture_output=True, text=True).stdout.splitlines()[-1])  # after any of its prints
  print(f"{args.num} examples, {args.norm} eps {args.eps}, {args.steps} APGD and FAB-T steps, "
        f"{args.queries} Square queries, {args.seeds} seeds (mean ± std)")
  print("| robust accuracy after | soundjax | torchattacks |\n| --- | --- | --- |")
  for name in ("clean",) + COMPONENTS:
    print(f"| {name} | {_spread([f[name] for f in ours])} | "
          f"{_spread([f[name] for f in theirs])} |")
  print(f"| AutoAttack as published (torchattacks: 10-step APGD and FAB-T) | | "
        f"{_spread([f['autoattack_published'] for f in theirs])} |")
  print("soundjax diagnostics (seed 0): " + ", ".join(
      f"{k} {ours[0][k]:.3f}" for k in ("grad_zero_share", "grad_nonfinite_share", "loss_gain",
                                         "no_gain_share", "square_only")))


if __name__ == "__main__":
  main()
