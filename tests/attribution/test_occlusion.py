"""Ranking, `occlude`, replacement values and the sliding-window occlusion map."""

import functools

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundjax import attribution

SHAPE = (3, 5)
FILL = 7.0  # Outside the inputs' range, so replaced cells are recognisable.


@functools.lru_cache(maxsize=None)
def jitted_occlude(fraction, direction):
  """One compiled `occlude` per static (fraction, direction), reused across hypothesis examples."""
  return jax.jit(functools.partial(occlude_constant, fraction=fraction, direction=direction))


def occlude_constant(x, a, *, fraction, direction):
  return attribution.occlude(x, a, fraction=fraction, direction=direction,
                             replacement=attribution.replace_constant(FILL))


@settings(max_examples=15, deadline=None)
@given(a=hnp.arrays(np.int32, SHAPE, elements=st.integers(-2, 2)),  # Small range: many ties.
       fraction=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.99, 1.0]),
       direction=st.sampled_from(attribution.DIRECTIONS))
def test_occlude_replaces_exactly_the_ranked_count(a, fraction, direction):
  x = np.linspace(0.0, 1.0, a.size, dtype=np.float32).reshape(SHAPE)
  out = np.asarray(jitted_occlude(fraction, direction)(x, a.astype(np.float32)))
  count = round(fraction * a.size)
  # Reference: stable sort, so among equal attributions the lower flat index goes first.
  key = -a.ravel() if direction == "positive" else a.ravel()
  expected = np.sort(np.argsort(key, kind="stable")[:count])
  np.testing.assert_array_equal(np.flatnonzero(out.ravel() == FILL), expected)
  kept = out != FILL
  np.testing.assert_array_equal(out[kept], x[kept])


def test_rank_is_a_permutation_with_ties_by_index():
  a = jnp.array([[1.0, 0.0, 1.0], [-0.0, 2.0, 0.0]])
  np.testing.assert_array_equal(attribution.rank(a, direction="positive"), [[1, 3, 2], [4, 0, 5]])
  np.testing.assert_array_equal(attribution.rank(a, direction="negative"), [[3, 0, 4], [1, 5, 2]])


@pytest.mark.parametrize("make, expected", [
    (lambda: attribution.replace_dataset_mean(0.25), lambda x: 0.25),
    (lambda: attribution.replace_dataset_min(-0.4242), lambda x: -0.4242),
    (lambda: attribution.replace_example_min(), lambda x: 3.0 * x.min()),
    (lambda: attribution.replace_example_max(), lambda x: x.max()),
    (lambda: attribution.replace_constant(np.arange(5.0)), lambda x: np.arange(5.0)),
    (lambda: attribution.replacement("mean", value=0.0), lambda x: 0.0),
    (lambda: attribution.replacement("image_min", scale=2.0), lambda x: 2.0 * x.min()),
    (lambda: attribution.replacement("example_max"), lambda x: x.max()),
])
def test_replacement_values(make, expected):
  x = jnp.arange(-3.0, 12.0).reshape(SHAPE)
  out = attribution.occlude(x, x, fraction=1.0, replacement=make())
  np.testing.assert_allclose(out, np.broadcast_to(expected(np.asarray(x)), SHAPE), rtol=1e-6)


def test_noise_replacement_is_keyed():
  x = jnp.zeros((40, 50))
  fill = attribution.replacement("noise", stddev=2.0, mean=1.0)
  out = attribution.occlude(x, x, fraction=1.0, replacement=fill, key=jax.random.key(0))
  again = attribution.occlude(x, x, fraction=1.0, replacement=fill, key=jax.random.key(0))
  np.testing.assert_array_equal(out, again)
  assert abs(float(jnp.mean(out)) - 1.0) < 0.1 and abs(float(jnp.std(out)) - 2.0) < 0.1
  with pytest.raises(ValueError, match="key"):
    attribution.occlude(x, x, fraction=0.5, replacement=fill)


ZERO = attribution.replace_constant(0.0)


@pytest.mark.parametrize("call, match", [
    (lambda x: attribution.occlude(x, x, fraction=1.1, replacement=ZERO), "fraction"),
    (lambda x: attribution.occlude(x, x, fraction=-0.1, replacement=ZERO), "fraction"),
    (lambda x: attribution.occlude(x, x, fraction="10%", replacement=ZERO), "fraction"),
    (lambda x: attribution.occlude(x, x, fraction=0.5, replacement="mean"), "replacement"),
    (lambda x: attribution.occlude(x, x, fraction=0.5, replacement=ZERO, direction="up"),
     "direction"),
    (lambda x: attribution.occlude(x, x[0], fraction=0.5, replacement=ZERO), "shape"),
    (lambda x: attribution.replacement("median"), "replacement must be one of"),
    (lambda x: attribution.replacement("constant"), "constant"),
    (lambda x: attribution.replace_noise(stddev=-1.0), "stddev"),
    (lambda x: attribution.replace_constant(np.nan), "value"),
    (lambda x: attribution.occlusion_map(None, window=0), "window"),
    (lambda x: attribution.occlusion_map(None, window=2, stride=(1, 2, 3)), "stride"),
])
def test_invalid_arguments_raise(call, match):
  with pytest.raises(ValueError, match=match):
    call(jnp.ones(SHAPE))


def weighted_sum(params, x, y):
  """A closed-form "loss": occluding a window with 0 raises it by -sum(w x) over the window."""
  del y
  return jnp.sum(params * x)


def reference_occlusion_map(w, x, window, stride):
  """Loops over windows in NumPy, with the edge-flush last window of `occlusion_map`."""
  total, count = np.zeros(x.shape[:2]), np.zeros(x.shape[:2])
  starts = [[*range(0, n - k + 1, s)] for n, k, s in zip(x.shape, window, stride)]
  starts = [s + [n - k] if s[-1] != n - k else s for s, n, k in zip(starts, x.shape, window)]
  for i in starts[0]:
    for j in starts[1]:
      patch = (slice(i, i + window[0]), slice(j, j + window[1]))
      total[patch] -= np.sum(w[patch] * x[patch])
      count[patch] += 1
  return np.broadcast_to((total / count).reshape(count.shape + (1,) * (x.ndim - 2)), x.shape)


@pytest.mark.parametrize("shape, window, stride, batch_size", [
    ((4, 6), (1, 1), (1, 1), None),      # One cell per window: exactly -w * x.
    ((5, 6), (2, 3), (2, 2), None),      # Uneven: edge windows overlap their neighbours.
    ((5, 4, 2), (3, 2), (1, 1), 4),      # Trailing channel axis, chunked windows.
])
def test_occlusion_map_matches_window_loop(shape, window, stride, batch_size):
  kw, kx = jax.random.split(jax.random.key(0))
  w, x = jax.random.normal(kw, shape), jax.random.normal(kx, shape)
  fn = attribution.occlusion_map(weighted_sum, window=window, stride=stride, fill=0.0,
                                 batch_size=batch_size)
  a = jax.jit(fn)(w, x, 0, jax.random.key(1))
  np.testing.assert_allclose(a, reference_occlusion_map(np.asarray(w), np.asarray(x), window,
                                                        stride), rtol=1e-5, atol=1e-6)


def test_occlusion_map_rejects_oversized_window():
  fn = attribution.occlusion_map(weighted_sum, window=(5, 1))
  with pytest.raises(ValueError, match="window"):
    fn(jnp.ones(SHAPE), jnp.ones(SHAPE), 0, jax.random.key(0))


def test_occlude_and_occlusion_map_trace_once_per_shape():
  traces = []
  fill = attribution.replace_noise(1.0)
  occlusion = attribution.occlusion_map(weighted_sum, window=2, fill=fill)

  @jax.jit
  def counted(x, a, key):
    traces.append(None)
    return (attribution.occlude(x, a, fraction=0.3, replacement=fill, key=key),
            occlusion(a, x, 0, key))

  counted(jnp.ones(SHAPE), jnp.zeros(SHAPE), jax.random.key(0))
  counted(jnp.zeros(SHAPE), jnp.ones(SHAPE), jax.random.key(1))
  assert len(traces) == 1
