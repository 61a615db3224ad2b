"""Attribution throughput against one gradient, the full occlusion sweep against the passes it
needs, and batched integrated gradients against a per-example, per-step Python loop.

Models: the `:quick` models of `configs/occlusion.py` with random weights (costs do not depend
on training): the sound VGG (channels (8, 16)) on 32 frames x 32 mel bands, and for the IG
comparison also the digits CNN on 8x8 images. The sweep is Paper 1's: 6 fractions x 5
replacements x 2 directions = 60 cells of |grad|. It needs one forward and backward pass (the
attribution) and 61 forward passes (60 cells + the original) per example: the reference of the
`sweep` group runs exactly those passes on the same examples (1,000 with --full, 64 by default).

XLA:CPU runs a convolution's input gradient about 3.4x slower inside a while loop (`lax.map`,
`scan`, `fori_loop`) than outside one (forward convolutions are unaffected), so on CPU the path
points of IG and SmoothGrad are best vmapped all at once (`path_batch_size=None`) while the
forward-only occlusion cells run fastest one at a time (`cell_batch_size=1`).

The `<model>/input-gradient` groups time the model's input gradient (one IG path point) at
growing batch sizes against one-example calls: on XLA:CPU the sound VGG's gradient costs 0.3 ms
per example at best against 0.5 ms alone, so no batched IG can beat the loop by much more than
that ratio plus the loop's own host work (x1.5 measured against a target of x10); the digits CNN
is small enough for per-call overheads to dominate (x10-16 measured).

Run: `.venv/bin/python scripts/bench_attribution.py [--only GROUP ...] [--tiny | --full]`.
"""

import functools
import sys

import benchlib
import jax
import numpy as np

from configs import occlusion as occlusion_config
from soundjax import attribution, losses, models
from soundjax.experiments.occlusion import evaluate as occlusion

NUM_CLASSES = 12
NUM_EXAMPLES = {"tiny": 4, "default": 64, "full": 1000}
# Cells per chunk of the sweep: one at a time (the config's choice on CPU) and 6 at a time.
CELL_BATCH_SIZES = {"tiny": (1,), "default": (1,), "full": (1, 6)}
METHOD_BATCH = {"tiny": 2, "default": 32, "full": 128}
LOOP_EXAMPLES = {"tiny": 1, "default": 1, "full": 2}
GRADIENT_BATCHES = {"tiny": (1, 2), "default": (1, 32), "full": (1, 4, 16, 64, 256)}
IG_STEPS = 64
# name -> (model name, hyper-parameters, input shape)
SETUPS = {"vgg-32x32": ("vgg", {"channels": (8, 16)}, (32, 32)),
          "digits-8x8": ("digits_cnn", {"features": (8, 16), "hidden": 32}, (8, 8))}


@functools.lru_cache(maxsize=None)
def setup(name: str, num_examples: int):
  """`(variables, xs, ys, key data, logits_fn, loss_fn)` of one model on random inputs."""
  model_name, kwargs, shape = SETUPS[name]
  model = models.get_model(model_name, num_classes=NUM_CLASSES, **kwargs)
  rng = np.random.default_rng(0)
  xs = rng.standard_normal((num_examples,) + shape).astype(np.float32)
  ys = rng.integers(0, NUM_CLASSES, num_examples).astype(np.int32)
  keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(1), num_examples)))
  variables = model.init(jax.random.key(0), xs[:1])
  logits_fn = losses.model_logits(model)
  return variables, xs, ys, keys, logits_fn, losses.per_example_loss(logits_fn,
                                                                     "softmax_cross_entropy")


def batched(fn):
  """`fn(params, x, y, key)` over a batch, keys passed as raw data."""
  per_example = lambda p, x, y, k: fn(p, x, y, jax.random.wrap_key_data(k))
  return jax.jit(jax.vmap(per_example, in_axes=(None, 0, 0, 0)))


def methods_rows(size: str) -> list:
  """Every configured method on a batch, against the plain gradient."""
  variables, xs, ys, keys, _, loss_fn = setup("vgg-32x32", NUM_EXAMPLES[size])
  settings = occlusion_config.get_config("").attribution
  statistics = {"mean": 0.0, "std": 1.0, "min": float(xs.min()), "max": float(xs.max())}
  batch = METHOD_BATCH[size]
  args = (variables, xs[:batch], ys[:batch], keys[:batch])
  methods = occlusion.make_methods(settings, loss_fn, statistics)
  workloads = [benchlib.Workload(f"attribution/methods {name}", batched(method), args, batch)
               for name, method in methods.items() if name != "gradient"]
  reference = benchlib.Workload("gradient", batched(methods["gradient"]), args, batch)
  return benchlib.compare(workloads, reference, repeats=benchlib.REPEATS[size])


def sweep_rows(size: str) -> list:
  """Paper 1's sweep of |grad| (cells one at a time; and 6 at a time) against its passes."""
  variables, xs, ys, keys, logits_fn, loss_fn = setup("vgg-32x32", NUM_EXAMPLES[size])
  settings = occlusion_config.get_config("").attribution
  statistics = {"mean": 0.0, "std": 1.0, "min": float(xs.min()), "max": float(xs.max())}
  data = jax.device_put((variables, xs, ys, keys))
  forward = jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0)))
  gradient = batched(attribution.gradient(loss_fn))
  cells = len(settings.fractions) * len(settings.replacements) * len(settings.directions)
  needed = benchlib.Workload(
      f"1 fwd+bwd + {cells + 1} fwd passes",
      lambda: [gradient(*data)] + [forward(*data[:3]) for _ in range(cells + 1)],
      examples=len(xs))
  replacements = [occlusion.make_replacement(n, statistics) for n in settings.replacements]

  def sweep(cell_batch_size):
    return batched(attribution.occlusion_sweep(
        loss_fn, attribution.abs_gradient(loss_fn), fractions=settings.fractions,
        replacements=replacements, directions=settings.directions, logits_fn=logits_fn,
        batch_size=cell_batch_size))

  workloads = [benchlib.Workload(f"attribution/sweep cell_batch_size={cell_batch_size}",
                                 sweep(cell_batch_size), data, len(xs), flops_fn=sweep(None))
               for cell_batch_size in CELL_BATCH_SIZES[size]]
  return benchlib.compare(workloads, needed, repeats=benchlib.REPEATS[size])


def input_gradient_rows(name: str, size: str) -> list:
  variables, xs, ys, _, _, loss_fn = setup(name, NUM_EXAMPLES[size])
  return benchlib.batching_ceiling(f"attribution/{name}", loss_fn, variables, xs, ys,
                                   sizes=GRADIENT_BATCHES[size], repeats=benchlib.REPEATS[size])


def integrated_gradients_rows(name: str, size: str) -> list:
  """Batched IG-64 (all path points in one vmap) against a Python loop over examples and steps
  calling a jitted single-example gradient."""
  variables, xs, ys, keys, _, loss_fn = setup(name, NUM_EXAMPLES[size])
  batch, loop_examples = METHOD_BATCH[size], LOOP_EXAMPLES[size]
  ig = attribution.integrated_gradients(loss_fn, num_steps=IG_STEPS)
  grad_fn = jax.jit(jax.grad(loss_fn, argnums=1))
  alphas = np.linspace(0.0, 1.0, IG_STEPS + 1)
  weights = np.r_[0.5, np.ones(IG_STEPS - 1), 0.5] / IG_STEPS

  def loop(x, y):
    total = np.zeros_like(x)
    for alpha, weight in zip(alphas, weights):
      total += weight * np.asarray(grad_fn(variables, np.float32(alpha) * x, y))
    return x * total

  np.testing.assert_allclose(loop(xs[0], ys[0]), np.asarray(  # Also compiles the gradient.
      jax.jit(ig)(variables, xs[0], ys[0], jax.random.key(0))), rtol=1e-3, atol=1e-6)
  reference = benchlib.Workload(f"IG-{IG_STEPS} per-example per-step loop",
                                lambda: [loop(x, y) for x, y in zip(xs[:loop_examples],
                                                                    ys[:loop_examples])],
                                examples=loop_examples)
  workload = benchlib.Workload(f"attribution/{name} IG-{IG_STEPS} jit(vmap) b{batch}",
                               batched(ig), (variables, xs[:batch], ys[:batch], keys[:batch]),
                               batch)
  return benchlib.compare([workload], reference, repeats=benchlib.REPEATS[size])


def groups(size: str, args) -> dict:
  del args
  available = {"methods": lambda: methods_rows(size), "sweep": lambda: sweep_rows(size)}
  for name in SETUPS:
    available[f"{name}/input-gradient"] = functools.partial(input_gradient_rows, name, size)
    available[f"{name}/integrated-gradients"] = functools.partial(integrated_gradients_rows,
                                                                  name, size)
  return available


if __name__ == "__main__":
  benchlib.run_suite("attribution", groups, sys.argv, __doc__.splitlines()[0])
