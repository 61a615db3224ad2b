"""Tests of FAB-T against independent references.

The projections onto a hyperplane inside a box against scipy (`linprog` for Linf, SLSQP for L2,
float64) and against a numpy transliteration of the AutoAttack reference's `projection_linf` and
`projection_l2` (`autoattack/fab_projections.py`, sort and bisection); the attack's loop against a
numpy transliteration of `FABAttack.attack_single_run` (`autoattack/fab_base.py`, targeted, box
[0, 1]) on the MLP toy with its closed-form input gradient; and on a linear model, the closed
form of the closest point of the target's region, `|z_y - z_t| / ||w_y - w_t||_dual`.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from soundjax import attacks
from soundjax.attacks.fab import boundary_step
from soundjax.metrics import perturbation
from tests.toys import CLASSES, DIM, batched, mlp_logits, mlp_params, predict

take = functools.partial(np.take_along_axis, axis=1)


def reference_projection_linf(t, w, b):
  """`projection_linf` of fab_projections.py, statement by statement, rows of numpy arrays."""
  w, b = w.copy(), b.copy()
  sign = 2 * ((w * t).sum(1) - b >= 0) - 1
  w, b = w * sign[:, None], b * sign
  a = (w < 0).astype(float)
  d = (a - t) * (w != 0)
  p = a - t * (2 * a - 1)
  indp = np.argsort(p, axis=1)
  b = b - (w * t).sum(1)
  b0 = (w * d).sum(1)
  indp2 = indp[:, ::-1]
  ws = take(w, indp2)
  bs2 = -ws * take(d, indp2)
  s = np.cumsum(np.abs(ws), axis=1)
  sb = np.cumsum(bs2, axis=1) + b0[:, None]
  b2 = sb[:, -1] - s[:, -1] * take(p, indp[:, :1])[:, 0]
  c_l = b - b2 > 0
  c2 = (b - b0 > 0) & ~c_l
  lb, ub = np.zeros(c2.sum()), np.full(c2.sum(), w.shape[1] - 1.0)
  indp_, sb_, s_, p_, b_ = indp[c2], sb[c2], s[c2], p[c2], b[c2]
  for _ in range(math.ceil(math.log2(w.shape[1]))):
    counter4 = np.floor((lb + ub) / 2)
    counter2 = counter4.astype(int)[:, None]
    indcurr = take(indp_, indp_.shape[1] - 1 - counter2)
    b2 = (take(sb_, counter2) - take(s_, counter2) * take(p_, indcurr))[:, 0]
    c = b_ - b2 > 0
    lb, ub = np.where(c, counter4, lb), np.where(c, ub, counter4)
  lb = lb.astype(int)
  if c_l.any():
    lmbd_opt = np.maximum((b[c_l] - sb[c_l, -1]) / (-s[c_l, -1]), 0)[:, None]
    d[c_l] = (2 * a[c_l] - 1) * lmbd_opt
  lmbd_opt = np.maximum((b[c2] - sb[c2, lb]) / (-s[c2, lb]), 0)[:, None]
  d[c2] = np.minimum(lmbd_opt, d[c2]) * a[c2] + np.maximum(-lmbd_opt, d[c2]) * (1 - a[c2])
  return d * (w != 0)


def reference_projection_l2(t, w, b):
  """`projection_l2` of fab_projections.py, statement by statement, rows of numpy arrays."""
  w = w.copy()
  c = (w * t).sum(1) - b
  ind2 = 2 * (c >= 0) - 1
  w, c = w * ind2[:, None], c * ind2
  with np.errstate(divide="ignore", invalid="ignore"):
    r = np.clip(np.maximum(t / w, (t - 1) / w), -1e12, 1e12)
  r[np.abs(w) < 1e-8] = 1e12
  r[r == -1e12] *= -1
  indr = np.argsort(r, axis=1, kind="stable")
  rs = take(r, indr)
  rs2 = np.pad(rs[:, 1:], ((0, 0), (0, 1)))
  rs[rs == 1e12], rs2[rs2 == 1e12] = 0, 0
  w3s = take(w ** 2, indr)
  w5 = w3s.sum(1, keepdims=True)
  ws = w5 - np.cumsum(w3s, axis=1)
  d = -(r * w) * (np.abs(w) > 1e-8)
  s = np.concatenate([-w5 * rs[:, :1], np.cumsum((-rs2 + rs) * ws, axis=1) - w5 * rs[:, :1]], 1)
  c4 = s[:, 0] + c < 0
  c3 = (d * w).sum(1) + c > 0
  c2 = ~(c4 | c3)
  lb, ub = np.zeros(c2.sum()), np.full(c2.sum(), w.shape[1] - 1.0)
  s_, c_ = s[c2], c[c2]
  for _ in range(math.ceil(math.log2(w.shape[1]))):
    counter4 = np.floor((lb + ub) / 2)
    c3 = take(s_, counter4.astype(int)[:, None])[:, 0] + c_ > 0
    lb, ub = np.where(c3, counter4, lb), np.where(c3, ub, counter4)
  lb = lb.astype(int)
  if c4.any():
    d[c4] = -(c[c4] / w5[c4, 0])[:, None] * w[c4]
  if c2.any():
    with np.errstate(divide="ignore", invalid="ignore"):
      alpha = (s[c2, lb] + c[c2]) / ws[c2, lb] + rs[c2, lb]
    alpha[ws[c2, lb] == 0] = 0
    c5 = (alpha[:, None] > r[c2]).astype(float)
    d[c2] = d[c2] * c5 - alpha[:, None] * w[c2] * (1 - c5)
  return d * (np.abs(w) > 1e-8)


REFERENCE_PROJECTIONS = {"linf": reference_projection_linf, "l2": reference_projection_l2}
ORDER = {"linf": np.inf, "l2": 2}


def projection_cases(seed=0, count=40, n=7):
  """Points in [0, 1]^n, weights (some 0) and values: the hyperplane in reach, out of reach of
  the unit box, and in reach only where the box binds."""
  rng = np.random.default_rng(seed)
  for i in range(count):
    t = rng.uniform(0, 1, n)
    t[rng.random(n) < 0.15] = float(rng.integers(2))  # some on a face
    w = rng.normal(size=n) * (rng.random(n) > 0.2)
    w[0] = 1.0 + rng.random()  # at least one weight
    yield t, w, rng.choice([-1, 1]) * rng.uniform(0.05, 1.5) * np.abs(w).sum() / (1 + i % 3)


def jax_step(norm, t, w, value, box=True):
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  lower, upper = (f32(-t), f32(1 - t)) if box else (None, None)
  return np.asarray(boundary_step(norm, f32(w), f32(value), lower, upper), np.float64)


def test_linf_step_is_the_linear_programs_minimum_and_the_references_point():
  kinds = set()
  for t, w, value in projection_cases():
    d = jax_step("linf", t, w, value)
    np.testing.assert_allclose(d, reference_projection_linf(t[None], w[None],
                                                           np.array([w @ t - value]))[0],
                               rtol=0, atol=3e-6)
    # min s over (d, s): -s <= d_i <= s, w . d = -value, -t <= d <= 1 - t.
    n = len(t)
    rows = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
    box = list(zip(-t, 1 - t)) + [(0, None)]
    lp = optimize.linprog(np.r_[np.zeros(n), 1.0], A_ub=rows, b_ub=np.zeros(2 * n),
                          A_eq=np.r_[w, 0.0][None], b_eq=[-value], bounds=box)
    assert np.all(d >= -t - 1e-6) and np.all(d <= 1 - t + 1e-6)
    if lp.status == 0:
      assert np.max(np.abs(d)) == pytest.approx(lp.fun, rel=1e-5, abs=1e-6)
      assert w @ d + value == pytest.approx(0, abs=1e-5 * np.abs(w).sum())
      unbounded = abs(value) / np.abs(w).sum()
      room = np.where(-np.sign(w * value) > 0, 1 - t, t)
      kinds.add("box binds" if np.any((unbounded > room + 1e-9) & (w != 0)) else "free")
      np.testing.assert_allclose(jax_step("linf", t, w, value, box=False),
                                 -np.sign(w * value) * unbounded, rtol=1e-5, atol=1e-7)
    else:  # Out of reach: the corner of the box that gets closest, by the LP over the box.
      lp = optimize.linprog(np.sign(value) * w, bounds=box[:-1])
      np.testing.assert_allclose(d, lp.x * (w != 0), rtol=0, atol=1e-6)
      kinds.add("out of reach")
  assert kinds == {"free", "box binds", "out of reach"}


def test_l2_step_is_the_quadratic_programs_minimiser_and_the_references_point():
  kinds = set()
  for t, w, value in projection_cases(1):
    d = jax_step("l2", t, w, value)
    np.testing.assert_allclose(d, reference_projection_l2(t[None], w[None],
                                                         np.array([w @ t - value]))[0],
                               rtol=0, atol=3e-6)
    np.testing.assert_allclose(jax_step("l2", t, w, value, box=False), -value * w / (w @ w),
                               rtol=1e-5, atol=1e-7)
    box = list(zip(-t, 1 - t))
    if np.abs(w) @ np.where(-np.sign(w * value) > 0, 1 - t, t) < abs(value):
      kinds.add("out of reach")
      continue
    qp = optimize.minimize(lambda v: v @ v, np.zeros(len(t)), jac=lambda v: 2 * v, bounds=box,
                           constraints=[{"type": "eq", "fun": lambda v: w @ v + value,
                                         "jac": lambda v: w}],
                           method="SLSQP", options={"ftol": 1e-15, "maxiter": 500})
    assert qp.success
    np.testing.assert_allclose(d, qp.x, rtol=0, atol=2e-6)
    kinds.add("box binds" if np.any(np.isclose(np.abs(qp.x), np.where(qp.x > 0, 1 - t, t))
                                    & (qp.x != 0)) else "free")
  assert kinds == {"free", "box binds", "out of reach"}


def test_steps_are_scale_free_and_safe_on_degenerate_hyperplanes():
  t, w, value = next(projection_cases(2))
  for norm in ("linf", "l2"):
    d = jax_step(norm, t, w, value)
    for scale in (1e-30, 1e25):  # squares of the weights would under- or overflow
      np.testing.assert_allclose(jax_step(norm, t, scale * w, scale * value), d, rtol=1e-5,
                                 atol=1e-7)
    np.testing.assert_array_equal(jax_step(norm, t, 0 * w, value), 0)  # no normal: no step
    np.testing.assert_array_equal(jax_step(norm, t, w, 0.0), 0)  # on the hyperplane already


def mlp_parts(params):
  w1, b1, w2, b2 = (np.asarray(params[k], np.float64) for k in ("w1", "b1", "w2", "b2"))
  logits = lambda v: np.tanh(v @ w1 + b1) @ w2 + b2
  # The input gradient of z_t - z_y.
  grad = lambda v, y, t: w1 @ ((1 - np.tanh(v @ w1 + b1) ** 2) * (w2[:, t] - w2[:, y]))
  return logits, grad


def reference_fab_targeted(params, x0, y, target, norm, num_steps, alpha_max=0.1, eta=1.05,
                           beta=0.9):
  """`FABAttack.attack_single_run(is_targeted=True)` of fab_base.py for one example, no random
  start (the first restart), box [0, 1], float64: the closest misclassified iterate and its
  distance (inf if none)."""
  logits, grad = mlp_parts(params)
  project, order = REFERENCE_PROJECTIONS[norm], ORDER[norm]
  x1, adv, res2 = x0.copy(), x0.copy(), 1e10
  for _ in range(num_steps):
    z = logits(x1)
    df, dg = z[target] - z[y], grad(x1, y, target)
    b = -df + dg @ x1
    d3 = project(np.stack([x1, x0]), np.stack([dg, dg]), np.array([b, b]))
    a0 = np.maximum(np.linalg.norm(d3, order, axis=1), 1e-8)
    alpha = min(max(a0[0] / (a0[0] + a0[1]), 0.0), alpha_max)
    x1 = np.clip((x1 + eta * d3[0]) * (1 - alpha) + (x0 + d3[1] * eta) * alpha, 0.0, 1.0)
    if np.argmax(logits(x1)) != y:
      t = np.linalg.norm(x1 - x0, order)
      adv, res2 = (x1, t) if t < res2 else (adv, res2)
      x1 = x0 + (x1 - x0) * beta
  return adv, (res2 if res2 < 1e10 else np.inf)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_iterates_and_result_match_the_reference_loop(norm):
  params = mlp_params(3)
  x = jax.random.uniform(jax.random.PRNGKey(4), (6, DIM))
  z = np.asarray(jax.vmap(mlp_logits, (None, 0))(params, x))
  y, targets = np.argsort(-z, axis=1)[:, 0], np.argsort(-z, axis=1)[:, 1]
  pairs = jnp.asarray(np.stack([y, targets], -1), jnp.int32)
  expected = [reference_fab_targeted(params, np.asarray(x[i], np.float64), y[i], targets[i],
                                     norm, num_steps=12) for i in range(len(y))]
  sizes = np.array([size for _, size in expected])
  assert np.all(np.isfinite(sizes))
  attack = jax.jit(lambda eps, x, pairs: jax.vmap(attacks.fab_targeted(
      mlp_logits, eps=eps, norm=norm, num_steps=12, bounds=(0.0, 1.0), unroll=False),
      in_axes=(None, 0, 0, None))(params, x, pairs, jax.random.PRNGKey(0)))
  # A budget holding every closest point: the reference's points.
  x_adv = attack(jnp.float32(np.max(sizes) * 1.01), x, pairs)
  np.testing.assert_allclose(x_adv, np.stack([adv for adv, _ in expected]), rtol=0, atol=2e-5)
  # A budget between the sizes: the reference's points inside it, x for the others.
  eps = np.median(sizes)
  x_adv = np.asarray(attack(jnp.float32(eps), x, pairs))
  inside = sizes <= eps
  assert 0 < inside.sum() < len(y)
  np.testing.assert_allclose(x_adv[inside], np.stack([a for a, _ in expected])[inside], rtol=0,
                             atol=2e-5)
  np.testing.assert_array_equal(x_adv[~inside], np.asarray(x)[~inside])
  assert attack._cache_size() == 1


@pytest.mark.parametrize("norm, dual", [("linf", 1), ("l2", 2)])
def test_finds_the_closest_point_of_the_target_on_a_linear_model(norm, dual):
  # Classes 0 and 1 against each other; the others are far below (never in the way).
  w = jax.random.normal(jax.random.PRNGKey(5), (DIM, 4))
  params = {"w": w, "b": jnp.array([0.0, 0.0, -50.0, -50.0])}
  logits_fn = lambda p, v: v @ p["w"] + p["b"]
  x = jax.random.uniform(jax.random.PRNGKey(6), (8, DIM), minval=-1, maxval=1)
  z, wn = np.asarray(x @ w, np.float64), np.asarray(w, np.float64)
  y = np.argmax(z[:, :2], axis=1)
  pairs = jnp.asarray(np.stack([y, 1 - y], -1), jnp.int32)
  closest = np.abs(z[:, 0] - z[:, 1]) / np.linalg.norm(wn[:, 0] - wn[:, 1], dual)
  attack = jax.jit(lambda eps: jax.vmap(attacks.fab_targeted(
      logits_fn, eps=eps, norm=norm, num_steps=8, unroll=False), in_axes=(None, 0, 0, None))(
          params, x, pairs, jax.random.PRNGKey(0)))
  x_adv = attack(jnp.float32(10.0))
  found = np.linalg.norm(np.asarray(x_adv - x, np.float64), ORDER[norm], axis=1)
  np.testing.assert_array_equal(predict(logits_fn, params, x_adv), 1 - y)
  assert np.all(found >= closest * (1 - 1e-5)) and np.all(found <= closest * 1.006)
  # Nothing outside eps: a budget under the closest point returns x; one between the points
  # found, those inside it and x for the others.
  np.testing.assert_array_equal(attack(jnp.float32(np.min(closest) * 0.999)), x)
  ordered = np.sort(found)
  eps = (ordered[3] + ordered[4]) / 2
  inside = found <= eps
  x_eps = np.asarray(attack(jnp.float32(eps)))
  np.testing.assert_allclose(x_eps[inside], np.asarray(x_adv)[inside], rtol=0, atol=1e-6)
  np.testing.assert_array_equal(x_eps[~inside], np.asarray(x)[~inside])


@functools.cache
def budgeted():
  return batched(attacks.fab_targeted(mlp_logits, eps=0.25, num_steps=6, num_restarts=3,
                                      bounds=(-0.5, 0.5), snr_db=6.0, unroll=False))


def mlp_batch(seed, size=12):
  x = jax.random.uniform(jax.random.PRNGKey(seed), (size, DIM), minval=-0.5, maxval=0.5)
  z = jax.vmap(mlp_logits, (None, 0))(mlp_params(1), x)
  ranked = jnp.argsort(-z, axis=1)
  return x, ranked[:, :2].astype(jnp.int32), jax.random.split(jax.random.PRNGKey(seed + 1), size)


def test_stays_in_the_budget_traces_once_and_same_key_gives_same_bits():
  attack, params = budgeted(), mlp_params(1)
  (x, pairs, keys), (x2, pairs2, keys2) = mlp_batch(0), mlp_batch(1)
  first = attack(params, x, pairs, keys)
  attack(mlp_params(2), x2, pairs2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(params, x, pairs, keys), first)
  # In the ball, above the SNR floor, in the box, finite; misclassified wherever it moved.
  assert np.all(np.isfinite(first))
  assert np.all(jax.vmap(perturbation.within_linf, (0, 0, None))(x, first, 0.25))
  assert np.all(jax.vmap(perturbation.above_snr, (0, 0, None))(x, first, 6.0))
  assert np.all((first >= -0.5) & (first <= 0.5))
  moved = np.any(np.asarray(first) != np.asarray(x), axis=1)
  assert 0 < moved.sum() < len(x)
  labels = np.asarray(pairs[:, 0])
  assert np.all(np.asarray(predict(mlp_logits, params, first))[moved] != labels[moved])
  # The restarts' random starts follow the key, where they run.
  other = attack(params, x, pairs, jax.vmap(lambda k: jax.random.fold_in(k, 7))(keys))
  assert not np.array_equal(other, first)


def test_zero_or_nan_gradients_and_misclassified_inputs_give_x():
  x, pairs, keys = mlp_batch(0, size=4)
  params = mlp_params(1)
  flat = lambda p, v: 0.0 * v[:CLASSES] + p  # zero input gradients
  nan = lambda p, v: mlp_logits(p, v) + jnp.sqrt(0.0 * v[0])  # NaN input gradients
  ranked = jnp.argsort(-jax.vmap(mlp_logits, (None, 0))(params, x), axis=1).astype(jnp.int32)
  cases = ((flat, jnp.array([0.0, 1.0, 0.5]), jnp.tile(jnp.array([1, 0]), (4, 1))),
           (nan, params, pairs),
           (mlp_logits, params, ranked[:, 1:]))  # the label is not the prediction
  for logits_fn, p, y in cases:
    attack = batched(attacks.fab_targeted(logits_fn, eps=10.0, num_steps=3, unroll=False))
    np.testing.assert_array_equal(attack(p, x, y, keys), x)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(norm="l1"), ValueError, "norm"),
    (dict(eps=-0.1), ValueError, "eps"),
    (dict(num_steps=0), ValueError, "num_steps"),
    (dict(num_restarts=0), ValueError, "num_restarts"),
    (dict(alpha_max=1.5), ValueError, "alpha_max"),
    (dict(eta=0.5), ValueError, "eta"),
    (dict(beta=-0.1), ValueError, "beta"),
    (dict(bounds=(1.0, -1.0)), ValueError, "bounds"),
    (dict(snr_db=float("nan")), ValueError, "snr_db"),
    (dict(logits_fn=None), TypeError, "logits_fn"),
])
def test_rejects_invalid_arguments(kwargs, error, match):
  arguments = dict(logits_fn=mlp_logits, eps=0.1)
  with pytest.raises(error, match=match):
    attacks.fab_targeted(**{**arguments, **kwargs})


def test_rejects_invalid_pairs_and_logits_when_traced():
  attack, x, key = attacks.fab_targeted(mlp_logits, eps=0.1), jnp.zeros(DIM), jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="pair"):
    jax.eval_shape(attack, mlp_params(), x, jnp.int32(1), key)
  with pytest.raises(TypeError, match="integer"):
    jax.eval_shape(attack, mlp_params(), x, jnp.array([0.0, 1.0]), key)
  with pytest.raises(ValueError, match=r"logits \[classes\]"):
    jax.eval_shape(attacks.fab_targeted(lambda p, v: jnp.outer(v, v), eps=0.1), None, x,
                   jnp.array([0, 1]), key)
