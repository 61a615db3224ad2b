"""Attribution throughput, the full occlusion sweep against the passes it needs, and batched
integrated gradients against a per-example, per-step Python loop.

Models: the `:quick` models of `configs/occlusion.py` with random weights (costs do not depend
on training): the sound VGG (channels (8, 16)) on 32 frames x 32 mel bands, and for the IG
comparison also the digits CNN on 8x8 images. The sweep is Paper 1's: 6 fractions x 5
replacements x 2 directions = 60 cells of |grad|. It needs one forward and backward pass (the
attribution) and 61 forward passes (60 cells + the original) per example; both pass costs are
measured here, on the same 1,000 examples, and the ratio reported.

XLA:CPU runs a convolution's input gradient about 3.4x slower inside a while loop (`lax.map`,
`scan`, `fori_loop`) than outside one (forward convolutions are unaffected), so on CPU the path
points of IG and SmoothGrad are best vmapped all at once (`path_batch_size=None`) while the
forward-only occlusion cells run fastest one at a time (`cell_batch_size=1`).

Before each IG comparison the bench times the model's input gradient (one IG path point) at
batch 1 ... 256: on XLA:CPU the sound VGG's gradient costs 0.3 ms per example at best against
0.5 ms alone, so no batched IG can beat the loop by much more than that ratio plus the loop's
own host work (x1.5 measured against a target of x10); the digits CNN is small enough for
per-call overheads to dominate (x10-16 measured).

Run: `.venv/bin/python scripts/bench_attribution.py` (about 4 minutes on 2 busy CPU cores).
"""

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchlib import batching_ceiling, report, seconds_per_call  # noqa: E402

from configs import occlusion as occlusion_config  # noqa: E402
from soundjax import attribution, losses, models  # noqa: E402
from soundjax.experiments.occlusion import evaluate as occlusion  # noqa: E402

NUM_CLASSES = 12
NUM_EXAMPLES = 1000
METHOD_BATCH = 128
LOOP_EXAMPLES = 2
# name -> (model name, hyper-parameters, input shape)
SETUPS = {"sound VGG 32x32": ("vgg", {"channels": (8, 16)}, (32, 32)),
          "digits CNN 8x8": ("digits_cnn", {"features": (8, 16), "hidden": 32}, (8, 8))}


def setup(name: str = "sound VGG 32x32"):
  model_name, kwargs, shape = SETUPS[name]
  model = models.get_model(model_name, num_classes=NUM_CLASSES, **kwargs)
  rng = np.random.default_rng(0)
  xs = rng.standard_normal((NUM_EXAMPLES,) + shape).astype(np.float32)
  ys = rng.integers(0, NUM_CLASSES, NUM_EXAMPLES).astype(np.int32)
  keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(1), NUM_EXAMPLES)))
  variables = model.init(jax.random.key(0), xs[:1])
  logits_fn = losses.model_logits(model)
  return variables, xs, ys, keys, logits_fn, losses.per_example_loss(logits_fn,
                                                                     "softmax_cross_entropy")


def batched(fn):
  """`fn(params, x, y, key)` over a batch, keys passed as raw data."""
  per_example = lambda p, x, y, k: fn(p, x, y, jax.random.wrap_key_data(k))
  return jax.jit(jax.vmap(per_example, in_axes=(None, 0, 0, 0)))


def main() -> None:
  variables, xs, ys, keys, logits_fn, loss_fn = setup()
  settings = occlusion_config.get_config("").attribution
  statistics = {"mean": 0.0, "std": 1.0, "min": float(xs.min()), "max": float(xs.max())}
  print(f"device: {jax.devices()[0].device_kind}; sound VGG on 32x32; {NUM_EXAMPLES} examples")

  print("-- attribution throughput (batch of 128)")
  methods = occlusion.make_methods(settings, loss_fn, statistics)
  args = (variables, xs[:METHOD_BATCH], ys[:METHOD_BATCH], keys[:METHOD_BATCH])
  for name, method in methods.items():
    report(f"{name}", METHOD_BATCH, seconds_per_call(batched(method), *args))

  print("-- full sweep vs the passes it needs")
  forward = jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0)))
  gradient = batched(attribution.gradient(loss_fn))
  t_forward = seconds_per_call(forward, variables, xs, ys)
  t_gradient = seconds_per_call(gradient, variables, xs, ys, keys)
  cells = len(settings.fractions) * len(settings.replacements) * len(settings.directions)
  needed = t_gradient + (cells + 1) * t_forward
  print(f"forward {t_forward * 1e3:.1f} ms, forward+backward {t_gradient * 1e3:.1f} ms on "
        f"{NUM_EXAMPLES}; the {cells}-cell sweep needs 1 fwd+bwd + {cells + 1} fwd = "
        f"{needed:.2f} s")
  replacements = [occlusion.make_replacement(n, statistics) for n in settings.replacements]
  for cell_batch_size in (1, 6):
    sweep = batched(attribution.occlusion_sweep(
        loss_fn, attribution.abs_gradient(loss_fn), fractions=settings.fractions,
        replacements=replacements, directions=settings.directions, logits_fn=logits_fn,
        batch_size=cell_batch_size))
    seconds = seconds_per_call(sweep, variables, xs, ys, keys, repeats=1)
    report(f"sweep abs_gradient cell_batch_size={cell_batch_size}", NUM_EXAMPLES, seconds)
    print(f"  ratio to the passes it needs: {seconds / needed:.2f}x")

  print("-- integrated gradients, 64 steps: batched vs per-example per-step loop")
  for name in SETUPS:
    compare_integrated_gradients(name, *setup(name))


def compare_integrated_gradients(name, variables, xs, ys, keys, logits_fn, loss_fn) -> None:
  """Batched IG-64 (all path points in one vmap) against a Python loop over examples and steps
  calling a jitted single-example gradient (timed on `LOOP_EXAMPLES` examples)."""
  del logits_fn
  print(f"{name}: per-example cost of one IG path point against the batch size")
  batching_ceiling(loss_fn, variables, xs, ys)
  ig = attribution.integrated_gradients(loss_fn, num_steps=64)
  args = (variables, xs[:METHOD_BATCH], ys[:METHOD_BATCH], keys[:METHOD_BATCH])
  t_batched = seconds_per_call(batched(ig), *args) / METHOD_BATCH
  grad_fn = jax.jit(jax.grad(loss_fn, argnums=1))
  alphas, weights = np.linspace(0.0, 1.0, 65), np.r_[0.5, np.ones(63), 0.5] / 64

  def loop(x, y):
    total = np.zeros_like(x)
    for alpha, weight in zip(alphas, weights):
      total += weight * np.asarray(grad_fn(variables, np.float32(alpha) * x, y))
    return x * total

  np.testing.assert_allclose(loop(xs[0], ys[0]), np.asarray(  # Also compiles the gradient.
      jax.jit(ig)(variables, xs[0], ys[0], jax.random.key(0))), rtol=1e-3, atol=1e-6)
  start = time.perf_counter()
  for x, y in zip(xs[:LOOP_EXAMPLES], ys[:LOOP_EXAMPLES]):
    loop(x, y)
  t_loop = (time.perf_counter() - start) / LOOP_EXAMPLES
  report(f"{name}: IG-64 per-example per-step loop", 1, t_loop)
  report(f"{name}: IG-64 batched", 1, t_batched, reference=t_loop)


if __name__ == "__main__":
  main()
