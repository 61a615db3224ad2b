"""Tests of the Square attack: every query it makes, recorded on the host, against the reference's
update rule (`autoattack/square.py`, Linf and L2), and the attack against masked gradients.

The recording wraps the model's logits in an ordered `jax.debug.callback`, so the test sees each
point the attack queries and its margin, and rebuilds the kept point (the best so far) itself.
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks
from soundjax.attacks import square_search
from soundjax.metrics import perturbation
from tests.toys import assert_budget_sweep_compiles_once, batched

SHAPE, CLASSES, EPS, BOX = (5, 6, 2), 3, 0.1, (-0.5, 0.5)


def reference_p(i, num_queries, p_init):
  """The reference's `p_selection` (rescaled to `num_queries`)."""
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
  return p


def reference_side(i, num_queries, p_init, h, w):
  """The reference's Linf window side."""
  return min(max(int(round(math.sqrt(reference_p(i, num_queries, p_init) * h * w))), 1), min(h, w))


def reference_l2_side(i, num_queries, p_init, h, w):
  """The reference's L2 window side (AutoAttack's `attack_single_run`)."""
  s = max(int(round(math.sqrt(reference_p(i, num_queries, p_init) * h * w))), 3)
  if s % 2 == 0:
    s += 1
  return min(s, min(h, w))


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


# --- L2: transcriptions of the reference (float64, channels last instead of [c, h, w]) ---

SHAPE_L2 = (12, 14, 2)  # tiles of side 2 from offset 1 cross the border (cropped, see below)


def reference_rectangles(x, y):
  """`pseudo_gaussian_pert_rectangles` of square-attack's `attack.py` (AutoAttack's
  `eta_rectangles`)."""
  delta = np.zeros([x, y])
  x_c, y_c = x // 2 + 1, y // 2 + 1
  counter2 = [x_c - 1, y_c - 1]
  for counter in range(0, max(x_c, y_c)):
    delta[max(counter2[0], 0):min(counter2[0] + (2 * counter + 1), x),
          max(0, counter2[1]):min(counter2[1] + (2 * counter + 1), y)] += 1.0 / (counter + 1) ** 2
    counter2[0] -= 1
    counter2[1] -= 1
  return delta / np.sqrt(np.sum(delta ** 2, keepdims=True)) if delta.size else delta


@functools.cache
def reference_pseudo_gaussian(s):
  """`meta_pseudo_gaussian_pert(s)` (AutoAttack's `eta`), without its random transpose."""
  delta = np.zeros([s, s])
  delta[:s // 2] = reference_rectangles(s // 2, s)
  delta[s // 2:] = reference_rectangles(s - s // 2, s) * (-1)
  return delta / np.sqrt(np.sum(delta ** 2, keepdims=True))


def test_pseudo_gaussian_bumps_are_the_references():
  for s in range(1, 14):
    np.testing.assert_allclose(square_search._pseudo_gaussian(s, 2), reference_pseudo_gaussian(s),
                               rtol=1e-12, atol=1e-15)
    # 1-D inputs: the reference's stacking of its rectangles, of width 1.
    column = np.concatenate([reference_rectangles(s // 2, 1), -reference_rectangles(s - s // 2, 1)])
    np.testing.assert_allclose(square_search._pseudo_gaussian(s, 1),
                               column[:, 0] / np.linalg.norm(column), rtol=1e-12, atol=1e-15)


def assert_is_l2_start(start, x, eps):
  """`start` is AutoAttack's L2 start: tiles of side h // 5 from (h - 5 s) // 2, each a signed
  (per channel) and maybe transposed bump, on the eps sphere, clipped to the box. Tiles crossing
  the border are cropped (where the reference raises a shape error)."""
  h, w = x.shape[:2]
  s = h // 5
  sp_init = (h - s * 5) // 2
  eta, delta, vh = reference_pseudo_gaussian(s), np.zeros_like(x), sp_init
  for _ in range(h // s):
    vw = sp_init
    for _ in range(w // s):
      window = np.s_[vh:vh + s, vw:vw + s]
      for k in range(x.shape[-1]):
        seen = (start - x)[window][..., k]
        crops = [sign * e[:seen.shape[0], :seen.shape[1]] for e in (eta, eta.T) for sign in (1, -1)]
        # The closest in direction (crops of a border tile differ in norm).
        delta[window][..., k] = max(crops, key=lambda c: np.sum(c * seen) / np.linalg.norm(c))
      vw += s
    vh += s
  np.testing.assert_allclose(start, np.clip(x + delta / np.linalg.norm(delta) * eps, *BOX),
                             atol=1e-6)


def reference_l2_query(kept, x, eps, s, corner, corner_2, transposed, signs):
  """AutoAttack's L2 query (`attack_single_run`) from the kept perturbation, given its draws."""
  delta_curr, c = kept.copy(), kept.shape[-1]
  (vh, vw), (vh2, vw2) = corner, corner_2
  new_deltas_mask = np.zeros(kept.shape[:2] + (1,))
  new_deltas_mask_2 = np.zeros(kept.shape[:2] + (1,))
  new_deltas_mask[vh:vh + s, vw:vw + s] = 1.0
  new_deltas_mask_2[vh2:vh2 + s, vw2:vw2 + s] = 1.0
  norms_window_1 = np.sqrt(np.sum(delta_curr[vh:vh + s, vw:vw + s] ** 2, axis=(0, 1),
                                  keepdims=True))
  norms_image = np.sqrt(np.sum(delta_curr ** 2))
  mask_image = np.maximum(new_deltas_mask, new_deltas_mask_2)
  norms_windows = np.sqrt(np.sum((delta_curr * mask_image) ** 2, axis=(0, 1), keepdims=True))
  eta = reference_pseudo_gaussian(s)
  new_deltas = (eta.T if transposed else eta)[..., None] * signs
  new_deltas = new_deltas + delta_curr[vh:vh + s, vw:vw + s] / (1e-12 + norms_window_1)
  new_deltas = new_deltas / (1e-12 + np.sqrt(np.sum(new_deltas ** 2, axis=(0, 1),
                                                    keepdims=True))) * (
      np.maximum(eps ** 2 - norms_image ** 2, 0) / c + norms_windows ** 2) ** 0.5
  delta_curr[vh2:vh2 + s, vw2:vw2 + s] = 0.0
  delta_curr[vh:vh + s, vw:vw + s] = new_deltas
  return np.clip(x + delta_curr / (1e-12 + np.sqrt(np.sum(delta_curr ** 2))) * eps, *BOX)


def is_l2_update(point, kept_point, x, s, eps):
  """Whether `point` is `reference_l2_query` of the kept point for some draws (windows, transpose,
  signs). Outside the first window a query is zero exactly on the second window and where the
  kept perturbation is, which narrows the window pairs to try; a second window that only empties
  zeros acts as none (as the first). The tolerance is the float32 rounding of
  `sqrt(eps^2 - |kept|^2)`, which cancels when the kept point fills the ball: ~sqrt(ulp) * eps."""
  kept, seen_zero = kept_point - x, point == x
  h, w, c = x.shape
  corners = list(itertools.product(range(h - s + 1), range(w - s + 1)))
  masks = np.zeros((len(corners), h, w), bool)
  for n, (r, q) in enumerate(corners):
    masks[n, r:r + s, q:q + s] = True
  kept_zero = np.all(kept == 0, axis=-1)
  emptied, zero = np.any(seen_zero & (kept != 0), axis=-1), np.all(seen_zero, axis=-1)
  pairs = set()
  for i, first in enumerate(masks):
    if np.any((kept == 0) & ~seen_zero & ~first[..., None]):
      continue  # a kept zero outside the first window stays zero
    fits = (np.all(masks | ~(emptied & ~first), axis=(1, 2))
            & np.all(~masks | zero | first, axis=(1, 2)))
    pairs |= {(i, j if np.any(masks[j] & ~first & ~kept_zero) else i) for j in np.nonzero(fits)[0]}
  return any(np.allclose(reference_l2_query(kept, x, eps, s, corners[i], corners[j], transposed,
                                            np.asarray(signs)), point, rtol=0, atol=1e-3 * eps)
             for i, j in pairs for transposed in (False, True)
             for signs in itertools.product((-1.0, 1.0), repeat=c))


def test_each_l2_query_is_the_references_update_of_the_kept_point():
  kx, kw, key = jax.random.split(jax.random.PRNGKey(1), 3)
  x = jax.random.uniform(kx, SHAPE_L2, minval=-0.45, maxval=0.45)
  params = 0.3 * jax.random.normal(kw, SHAPE_L2 + (CLASSES,))
  y = jnp.argmax(linear_logits(params, x))
  queried = []

  def recording_logits(params, v):
    logits = linear_logits(params, v)
    jax.debug.callback(lambda *a: queried.append([np.asarray(b, np.float64) for b in a]), v,
                       logits, ordered=True)
    return logits

  num_queries = 40
  # eps traced: one compile for a search that fails and one that succeeds after some queries.
  run = jax.jit(lambda eps: attacks.square(recording_logits, eps=eps, norm="l2", bounds=BOX,
                                           num_queries=num_queries)(params, x, y, key))
  x64, y = np.asarray(x, np.float64), int(y)
  for eps, succeeds in ((0.5, False), (2.0, True)):
    queried.clear()
    x_adv = np.asarray(run(jnp.float32(eps)), np.float64)
    jax.effects_barrier()
    assert_is_l2_start(queried[0][0], x64, eps)
    kept, kept_margin, accepted = queried[0][0], margin(queried[0][1], y), 0
    for i, (point, logits) in enumerate(queried[1:]):
      assert kept_margin > 0  # no query after a success
      assert np.linalg.norm(point - x64) <= eps * (1 + 1e-5)
      assert np.all((point >= BOX[0]) & (point <= BOX[1]))
      side = reference_l2_side(i, num_queries, 0.8, *SHAPE_L2[:2])
      assert is_l2_update(point, kept, x64, side, eps), i
      if margin(logits, y) < kept_margin:
        kept, kept_margin, accepted = point, margin(logits, y), accepted + 1
    assert accepted >= 2 and (kept_margin <= 0) == succeeds
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



def quantised_logits(v, x):
  """Two classes, 0 while `v . (q(x) - 1/2) > 0` for the input layer `q(x) = round(16 x) / 16`: a
  zero gradient, so gradient attacks see nothing."""
  return jnp.stack([jnp.sum(v * (jnp.round(16 * x) / 16 - 0.5)), jnp.zeros(())])


def test_l2_square_succeeds_where_masked_gradients_stop_pgd_and_apgd():
  # The count of inputs rounding to 1 above takes an even spread, which L2 pays dearly for; here
  # the clean margin is 0.4 of the largest drop in the ball, eps |v| (a random start in the ball
  # lowers it by about eps |v| / 8).
  kx, kv = jax.random.split(jax.random.PRNGKey(0))
  v, eps, keys = jax.random.normal(kv, (8, 8)), 1.0, jax.random.split(jax.random.PRNGKey(1), 4)
  x = 0.5 + 0.4 * eps * (v / jnp.linalg.norm(v))[None] + 0.01 * jax.random.uniform(kx, (4, 8, 8))
  y = jnp.zeros(4, jnp.int32)
  loss = lambda v, x, y: -jax.nn.log_softmax(quantised_logits(v, x))[y]
  margins = lambda u: jax.vmap(quantised_logits, (None, 0))(v, u)[:, 0]
  assert np.all(margins(x) > 0)
  for attack in (attacks.pgd(loss, eps=eps, norm="l2", step_size=eps / 3, num_steps=10),
                 attacks.apgd(loss, eps=eps, norm="l2", num_steps=10, unroll=False)):
    assert np.all(margins(batched(attack)(v, x, y, keys)) > 0)
  x_adv = batched(attacks.square(quantised_logits, eps=eps, norm="l2", num_queries=200,
                                 bounds=(0, 1)))(v, x, y, keys)
  assert np.all(margins(x_adv) < 0)
  assert np.all(jax.vmap(perturbation.within_l2, (0, 0, None))(x, x_adv, eps))
  assert np.all((x_adv >= 0) & (x_adv <= 1))

# Per norm, the waveforms' radius (L2: about the Linf ball's, the SNR floor binding on some).
WAVEFORM_EPS = {"linf": 0.05, "l2": 0.5}
WITHIN = {"linf": perturbation.within_linf, "l2": perturbation.within_l2}


@functools.cache
def waveform_square(norm):
  # 1-D inputs (waveforms): windows are intervals, the Linf start is +-eps per sample.
  logits_fn = lambda params, x: jnp.tanh(x @ params)
  return logits_fn, batched(square_for(logits_fn, norm))


def square_for(logits_fn, norm):
  return attacks.square(logits_fn, eps=WAVEFORM_EPS[norm], norm=norm, num_queries=30,
                        bounds=(-1, 1), snr_db=12.0)


def waveforms(seed):
  kx, ky, kk = jax.random.split(jax.random.PRNGKey(seed), 3)
  return (0.3 * jax.random.normal(kx, (4, 32)), jax.random.randint(ky, (4,), 0, CLASSES),
          jax.random.split(kk, 4))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_waveforms_stay_in_the_ball_box_and_snr_floor_and_lower_the_margin(norm):
  logits_fn, attack = waveform_square(norm)
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  x, _, keys = waveforms(4)
  y = jnp.argmax(jax.vmap(logits_fn, (None, 0))(params, x), axis=-1)  # margins to lower
  x_adv = attack(params, x, y, keys)
  assert np.all(jax.vmap(WITHIN[norm], (0, 0, None))(x, x_adv, WAVEFORM_EPS[norm]))
  assert np.all(jax.vmap(perturbation.above_snr, (0, 0, None))(x, x_adv, 12.0))
  assert np.all(np.abs(x_adv) <= 1.0)
  before, after = (np.asarray(jax.vmap(linear_margin, (None, None, 0, 0))(logits_fn, params, v, y))
                   for v in (x, x_adv))
  assert np.all(after < before)


def linear_margin(logits_fn, params, x, y):
  return attacks.margin(logits_fn(params, x), y, confidence=0.0, targeted=False)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_traces_once_per_shape_same_key_same_bits_and_batch_independent(norm):
  logits_fn, attack = waveform_square(norm)
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  (x, y, keys), (x2, y2, keys2) = waveforms(5), waveforms(6)
  first = attack(params, x, y, keys)
  attack(2.0 * params, x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(params, x, y, keys), first)
  assert not np.array_equal(attack(params, x, y, keys2), first)
  alone = jax.jit(square_for(logits_fn, norm))(params, x[1], y[1], keys[1])
  np.testing.assert_allclose(alone, first[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm, levels", [("linf", (0.1, 0.01)), ("l2", (0.5, 0.05))])
def test_an_eps_sweep_compiles_once_and_equals_each_concrete_eps(norm, levels):
  params = jax.random.normal(jax.random.PRNGKey(3), (32, CLASSES))
  make = lambda eps: attacks.square(lambda p, v: v @ p, eps=eps, norm=norm, num_queries=10)
  assert_budget_sweep_compiles_once(make, params, *waveforms(7), levels, rtol=0, atol=1e-6)


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

