"""The batched occlusion sweep and deletion/insertion curves against per-cell loops."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from soundjax import attribution

SHAPE = (3, 4)  # 12 cells: fractions below give whole counts where curves need them.
NUM_CLASSES = 3
BATCHED = dict(in_axes=(None, 0, 0, 0))
REPLACEMENTS = (attribution.replace_dataset_mean(0.0), attribution.replace_example_min(),
                attribution.replace_example_max(), attribution.replace_noise(0.5))


def logits_fn(params, x):
  weights, bias = params
  return weights @ jnp.ravel(x) + bias


def loss_fn(params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits_fn(params, x), y)


def accuracy(logits, ys):
  return jnp.mean(jnp.argmax(logits, axis=-1) == ys)


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)  # Host test data: no PRNG kernels to compile.
  normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
  return {
      "params": (normal(NUM_CLASSES, 12), normal(NUM_CLASSES)),
      "xs": normal(3, *SHAPE),
      "ys": jnp.asarray(rng.integers(0, NUM_CLASSES, 3), jnp.int32),
      "keys": jax.random.split(jax.random.key(1), 3),
  }


def run(fn, data):
  return jax.jit(jax.vmap(fn, **BATCHED))(data["params"], data["xs"], data["ys"], data["keys"])


def loop_reference(method, data, fractions, directions):
  """Per-example, per-cell Python loop over `occlude`, with the sweep's documented key split."""

  @jax.jit  # One compile of the unrolled loop, reused for every example.
  def one_example(params, x, y, key):
    keys = jax.random.split(key, 1 + len(REPLACEMENTS))
    a = method(params, x, y, keys[0])
    cells = [attribution.occlude(x, a, fraction=fraction, replacement=fill, direction=direction,
                                 key=keys[1 + r])
             for direction, (r, fill), fraction in itertools.product(
                 directions, enumerate(REPLACEMENTS), fractions)]
    return [loss_fn(params, c, y) for c in cells], [logits_fn(params, c) for c in cells]

  losses, logits = zip(*(one_example(data["params"], x, y, key)
                         for x, y, key in zip(data["xs"], data["ys"], data["keys"])))
  shape = (len(data["xs"]), len(directions), len(REPLACEMENTS), len(fractions))
  return np.reshape(losses, shape), np.reshape(logits, shape + (NUM_CLASSES,))


@pytest.mark.parametrize("method, batch_size", [
    (attribution.grad_x_input(loss_fn), None),
    (attribution.random_attribution(), 5),  # Keyed method, cells in uneven chunks.
])
def test_sweep_equals_per_cell_loop(data, method, batch_size):
  fractions, directions = (0.3, 0.99), attribution.DIRECTIONS
  sweep = attribution.occlusion_sweep(loss_fn, method, fractions=fractions,
                                      replacements=REPLACEMENTS, logits_fn=logits_fn,
                                      batch_size=batch_size)
  results = run(sweep, data)
  losses, logits = loop_reference(method, data, fractions, directions)
  np.testing.assert_allclose(results["loss"], losses, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(results["logits"], logits, rtol=1e-5, atol=1e-6)
  originals = jax.vmap(loss_fn, in_axes=(None, 0, 0))(data["params"], data["xs"], data["ys"])
  np.testing.assert_allclose(results["loss_original"], originals, rtol=1e-6)


def test_summarize_reduces_over_examples(data):
  sweep = attribution.occlusion_sweep(loss_fn, attribution.gradient(loss_fn), fractions=(0.3,),
                                      replacements=REPLACEMENTS[:2], logits_fn=logits_fn)
  results = run(sweep, data)
  summary = attribution.summarize(results, data["ys"], metric_fn=accuracy)
  loss, original = np.asarray(results["loss"]), np.asarray(results["loss_original"])
  np.testing.assert_allclose(summary["loss_difference"],
                             (loss - original[:, None, None, None]).mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(summary["loss_fell"], (loss < original[:, None, None, None]).mean(0),
                             rtol=1e-6)
  predictions = np.argmax(np.asarray(results["logits"]), axis=-1)
  np.testing.assert_allclose(summary["metric"],
                             (predictions == np.asarray(data["ys"])[:, None, None, None]).mean(0))
  np.testing.assert_allclose(summary["metric_difference"],
                             summary["metric"] - summary["metric_original"])
  assert summary["loss"].shape == (2, 2, 1)
  with pytest.raises(ValueError, match="logits"):
    attribution.summarize({"loss": results["loss"], "loss_original": original}, data["ys"],
                          metric_fn=accuracy)


def test_deletion_and_insertion_curves(data):
  fractions = (0.0, 0.25, 0.5, 0.75, 1.0)  # Whole counts of 12 cells.
  fill = attribution.replace_dataset_mean(0.0)
  method = attribution.gradient(loss_fn)  # Continuous values: no ties between directions.
  curves = attribution.deletion_insertion(loss_fn, method, fractions=fractions, replacement=fill,
                                          logits_fn=logits_fn)
  results = run(curves, data)
  assert results["loss"].shape == (3, 2, 5) and results["logits"].shape == (3, 2, 5, NUM_CLASSES)

  @jax.jit
  def reference(params, x, y, key):
    a = method(params, x, y, jax.random.split(key)[0])
    occluded_loss = lambda fraction, direction: loss_fn(params, attribution.occlude(
        x, a, fraction=fraction, replacement=fill, direction=direction), y)
    deletion = [occluded_loss(f, "positive") for f in fractions]
    # Revealing the top `fraction` = occluding the bottom `1 - fraction`.
    insertion = [occluded_loss(1.0 - f, "negative") for f in fractions]
    return jnp.array([deletion, insertion])

  expected = [reference(data["params"], *example)
              for example in zip(data["xs"], data["ys"], data["keys"])]
  np.testing.assert_allclose(results["loss"], expected, rtol=1e-5)
  summary = attribution.summarize(results)
  areas = attribution.curve_area(fractions, summary["loss"])
  np.testing.assert_allclose(areas, np.trapezoid(np.asarray(summary["loss"]), fractions, axis=-1),
                             rtol=1e-6)
  assert areas.shape == (len(attribution.CURVES),)


def test_curve_area_of_known_curves():
  np.testing.assert_allclose(attribution.curve_area([0.0, 0.5, 1.0], [[0.0, 0.5, 1.0],
                                                                      [2.0, 2.0, 2.0]]),
                             [0.5, 2.0])
  with pytest.raises(ValueError, match="fractions"):
    attribution.curve_area([1.0, 0.5], [0.0, 1.0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(fractions=()), "fractions"),
    (dict(fractions=(0.5, 1.5)), "fraction"),
    (dict(replacements=()), "replacements"),
    (dict(replacements=("mean",)), "replacements"),
    (dict(directions=("up",)), "direction"),
    (dict(batch_size=0), "batch_size"),
])
def test_invalid_sweep_arguments_raise(kwargs, match):
  args = dict(fractions=(0.5,), replacements=REPLACEMENTS) | kwargs
  with pytest.raises(ValueError, match=match):
    attribution.occlusion_sweep(loss_fn, attribution.gradient(loss_fn), **args)


def test_sweep_traces_once_per_shape(data):
  traces = []
  sweep = jax.vmap(attribution.occlusion_sweep(
      loss_fn, attribution.integrated_gradients(loss_fn, num_steps=4),
      fractions=(0.1, 0.9), replacements=REPLACEMENTS, batch_size=4), **BATCHED)

  @jax.jit
  def counted(*args):
    traces.append(None)
    return sweep(*args)

  counted(data["params"], data["xs"], data["ys"], data["keys"])
  counted(data["params"], -data["xs"], data["ys"], jax.random.split(jax.random.key(5), 3))
  assert len(traces) == 1
