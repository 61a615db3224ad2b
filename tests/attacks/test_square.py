"""Tests of the Square attack: every query it makes, recorded on the host, against the reference's
update rule (`autoattack/square.py`, Linf), and the attack against masked gradients.

The recording wraps the model's logits in an ordered `jax.debug.callback`, so the test sees each
point the attack queries and its margin, and rebuilds the kept point (the best so far) itself.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks
from soundjax.metrics import perturbation
from tests.toys import assert_budget_sweep_compiles_once, batched

SHAPE, CLASSES, EPS, BOX = (5, 6, 2), 3, 0.1, (-0.5, 0.5)


def reference_side(i, num_queries, p_init, h, w):
  """The reference's `p_selection` (rescaled to `num_queries`) and window side."""
  it = int(i / num_queries * 10000)
  if 10 < it <= 50:
    p = p_init / 2
  elif 50 < it <= 200:
    p = p_init / 4
  elif 200 < it <= 500:
    p = p_init / 8
  elif 500 < it <= 1000:
    p = p_init / 16
  elif 1000 < it <= 2000:
    p = p_init / 32
  elif 2000 < it <= 4000:
    p = p_init / 64
  elif 4000 < it <= 6000:
    p = p_init / 128
  elif 6000 < it <= 8000:
    p = p_init / 256
  elif 8000 < it:
    p = p_init / 512
  else:
    p = p_init
  return min(max(int(round(math.sqrt(p * h * w))), 1), min(h, w))


def linear_logits(params, x):
  return jnp.tensordot(x, params, axes=x.ndim)


def margin(logits, y):
  return logits[y] - np.max(np.delete(logits, y))


def is_window_update(point, kept, x, side, eps):
  """Whether `point` is `kept` with one `side` x `side` window set to clip(x +- eps), one sign
  per channel."""
  h, w, channels = point.shape
  for r in range(h - side + 1):
    for c in range(w - side + 1):
      inside = np.zeros((h, w, 1), bool)
      inside[r:r + side, c:c + side] = True
      if not np.allclose(np.where(inside, 0, point - kept), 0, atol=1e-7):
        continue
      window = (slice(r, r + side), slice(c, c + side))
      if all(any(np.allclose(point[window][..., k], np.clip(x[window][..., k] + s * eps, *BOX),
                             atol=1e-7) for s in (-1, 1)) for k in range(channels)):
        return True
  return False


@pytest.mark.parametrize("seed, eps, quantised, succeeds", [
    (0, 0.1, False, False),
    (0, 0.2, True, False),  # logits on a grid of 1/4: equal margins, which must not replace
    (0, 0.3, False, True),  # success after some queries: the search stops there
])
def test_each_query_moves_one_window_of_the_kept_point(seed, eps, quantised, succeeds):
  kx, kw, key = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.uniform(kx, SHAPE, minval=-0.45, maxval=0.45)
  params = 0.3 * jax.random.normal(kw, SHAPE + (CLASSES,))
  y = jnp.argmax(linear_logits(params, x))  # a correct prediction, with a margin to lower
  queried = []

  def recording_logits(params, v):
    logits = linear_logits(params, v)
    if quantised:
      logits = jnp.round(4 * logits) / 4
    jax.debug.callback(lambda *a: queried.append([np.asarray(b, np.float64) for b in a]), v,
                       logits, ordered=True)
    return logits

  num_queries = 40
  attack = attacks.square(recording_logits, eps=eps, num_queries=num_queries, bounds=BOX)
  x_adv = np.asarray(jax.jit(attack)(params, x, y, key), np.float64)
  x, y = np.asarray(x, np.float64), int(y)
  start = queried[0][0]
  np.testing.assert_allclose(start, np.clip(x + eps * np.sign(start - x)[:1], *BOX), atol=1e-7)
  kept, kept_margin, accepted, ties = start, margin(queried[0][1], y), 0, 0
  for i, (point, logits) in enumerate(queried[1:]):
    assert kept_margin > 0  # no query after a success
    assert np.all(np.abs(point - x) <= eps + 1e-7) and np.all((point >= BOX[0]) &
                                                              (point <= BOX[1]))
    assert is_window_update(point, kept, x, reference_side(i, num_queries, 0.8, *SHAPE[:2]), eps)
    ties += margin(logits, y) == kept_margin and not np.array_equal(point, kept)
    if margin(logits, y) < kept_margin:
      kept, kept_margin, accepted = point, margin(logits, y), accepted + 1
  assert accepted >= 2 and (kept_margin <= 0) == succeeds and (ties > 0) == quantised
  assert len(queried) < num_queries + 1 if succeeds else len(queried) == num_queries + 1
  np.testing.assert_allclose(x_adv, kept, atol=1e-7)


def masked_logits(threshold, x):
  """Two classes: 0 while more than `threshold` inputs round to 1. `jnp.round` has a zero
  gradient, so gradient attacks see nothing."""
  return jnp.stack([jnp.sum(jnp.round(x)) - threshold, jnp.zeros(())])


def test_square_succeeds_where_masked_gradients_stop_pgd_and_apgd():
  loss = lambda threshold, x, y: -jax.nn.log_softmax(masked_logits(threshold, x))[y]
  # All 64 inputs round to 1; class 1 needs 40 of them pushed below 0.5, i.e. by at least 0.1
  # (a random start in the ball pushes each one so far with probability 1/6).
  x, y = jnp.full((4, 8, 8), 0.6), jnp.zeros(4, jnp.int32)
  threshold, keys = jnp.float32(24.5), jax.random.split(jax.random.PRNGKey(0), 4)
  margins = lambda v: jax.vmap(masked_logits, (None, 0))(threshold, v)[:, 0]
  for attack in (attacks.pgd(loss, eps=0.15, step_size=0.05, num_steps=10),
                 attacks.apgd(loss, eps=0.15, num_steps=10, unroll=False)):
    assert np.all(margins(batched(attack)(threshold, x, y, keys)) > 0)
  x_adv = batched(attacks.square(masked_logits, eps=0.15, num_queries=300))(threshold, x, y, keys)
  assert np.all(margins(x_adv) < 0)
  assert np.all(jax.vmap(perturbation.within_linf, (0, 0, None))(x, x_adv, 0.15))


@functools.cache
def waveform_square():
  # 1-D inputs (waveforms): windows are intervals, the start is +-eps per sample.
  logits_fn = lambda params, x: jnp.tanh(x @ params)
  return logits_fn, batched(attacks.square(logits_fn, eps=0.05, num_queries=30, bounds=(-1, 1),
                                           snr_db=12.0))


def waveforms(seed):
  kx, ky, kk = jax.random.split(jax.random.PRNGKey(seed), 3)
  return (0.3 * jax.random.normal(kx, (4, 32)), jax.random.randint(ky, (4,), 0, CLASSES),
          jax.random.split(kk, 4))


def test_waveforms_stay_in_the_ball_box_and_snr_floor_and_lower_the_margin():
  logits_fn, attack = waveform_square()
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  x, _, keys = waveforms(4)
  y = jnp.argmax(jax.vmap(logits_fn, (None, 0))(params, x), axis=-1)  # margins to lower
  x_adv = attack(params, x, y, keys)
  assert np.all(jax.vmap(perturbation.within_linf, (0, 0, None))(x, x_adv, 0.05))
  assert np.all(jax.vmap(perturbation.above_snr, (0, 0, None))(x, x_adv, 12.0))
  assert np.all(np.abs(x_adv) <= 1.0)
  before, after = (np.asarray(jax.vmap(linear_margin, (None, None, 0, 0))(logits_fn, params, v, y))
                   for v in (x, x_adv))
  assert np.all(after < before)


def linear_margin(logits_fn, params, x, y):
  return attacks.margin(logits_fn(params, x), y, confidence=0.0, targeted=False)


def test_traces_once_per_shape_same_key_same_bits_and_batch_independent():
  logits_fn, attack = waveform_square()
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  (x, y, keys), (x2, y2, keys2) = waveforms(5), waveforms(6)
  first = attack(params, x, y, keys)
  attack(2.0 * params, x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(params, x, y, keys), first)
  assert not np.array_equal(attack(params, x, y, keys2), first)
  alone = jax.jit(attacks.square(logits_fn, eps=0.05, num_queries=30, bounds=(-1, 1),
                                 snr_db=12.0))(params, x[1], y[1], keys[1])
  np.testing.assert_allclose(alone, first[1], rtol=0, atol=1e-6)


def test_an_eps_sweep_compiles_once_and_equals_each_concrete_eps():
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  make = lambda eps: attacks.square(lambda p, v: v @ p, eps=eps, num_queries=10)
  assert_budget_sweep_compiles_once(make, params, *waveforms(7), (0.1, 0.01), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=-0.1), "eps"),
    (dict(norm="l1"), "norm"),
    (dict(num_queries=0), "num_queries"),
    (dict(p_init=0.0), "p_init"),
    (dict(p_init=1.5), "p_init"),
    (dict(bounds=(1.0, -1.0)), "bounds"),
])
def test_rejects_invalid_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    attacks.square(lambda p, v: v, **{"eps": 0.1, "num_queries": 5, **kwargs})


def test_rejects_invalid_labels():
  attack = attacks.square(lambda p, v: v, eps=0.1, num_queries=2)
  with pytest.raises(TypeError, match="integer"):
    attack(None, jnp.zeros(3), jnp.float32(1.0), jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="one integer class index per example"):
    attack(None, jnp.zeros(3), jnp.zeros(2, jnp.int32), jax.random.PRNGKey(0))

