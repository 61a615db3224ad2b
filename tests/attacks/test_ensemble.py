"""Tests of the AutoAttack ensemble and its gradient-masking diagnostics.

The references: the closed-form robust accuracy of a linear classifier (an example is breakable
in the eps-ball of a norm iff some class j has `z_y - z_j < eps * ||w_y - w_j||_dual`), each
component run alone with the keys `auto_attack` documents, predictions recomputed on the
returned points, a model whose input layer is `jnp.round` (zero gradients everywhere), and one
whose input gradient is NaN everywhere.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks, losses
from soundjax.attacks.ensemble import COMPONENTS
from soundjax.metrics import perturbation
from tests.toys import predict

CLASSES, DIM, SIZE = 5, 8, 16
STEPS, TARGETS, QUERIES = 5, 4, 50


@jax.custom_jvp
def poisoned(x, c):
  """`x`, whose gradient is NaN where `c` is 0 (and unchanged elsewhere)."""
  del c
  return x


poisoned.defjvp(lambda primals, tangents: (
    primals[0], tangents[0] * jnp.where(primals[1] == 0, jnp.nan, 1.0)))


def linear_logits(params, x):
  """`x @ w`; with `c = 0` its input gradient is NaN everywhere."""
  return poisoned(x, params["c"]) @ params["w"]


def make(logits_fn, eps, **kwargs):
  return attacks.auto_attack(logits_fn, eps=eps, ce_loss=losses.softmax_cross_entropy(logits_fn),
                             dlr_targeted_loss=losses.dlr_targeted_loss(logits_fn),
                             unroll=False, **kwargs)


def sweep(logits_fn, **kwargs):
  """`jit(vmap(auto_attack(eps)))` with eps traced (`._cache_size()` counts its compiles)."""
  return jax.jit(lambda eps, params, x, y, keys: jax.vmap(
      make(logits_fn, eps, **kwargs), in_axes=(None, 0, 0, 0))(params, x, y, keys))


@functools.cache
def linear_ensemble(norm, num_steps=STEPS):
  return sweep(linear_logits, norm=norm, num_steps=num_steps, num_target_classes=TARGETS,
               num_queries=QUERIES)


def linear_problem(seed=0):
  """A linear model that ignores its first input (a gradient zero there, not everywhere),
  inputs, labels (the first two wrong: not attacked) and keys."""
  w = jax.random.normal(jax.random.PRNGKey(seed), (DIM, CLASSES)).at[0].set(0.0)
  params = {"w": w, "c": jnp.float32(1.0)}
  x = jax.random.uniform(jax.random.PRNGKey(seed + 10), (SIZE, DIM), minval=-1, maxval=1)
  y = jnp.argmax(x @ w, -1)
  y = y.at[:2].set((y[:2] + 1) % CLASSES)
  return params, x, y, jax.random.split(jax.random.PRNGKey(seed + 20), SIZE)


def closed_form_robust(params, x, y, eps, dual_order):
  w, y = np.asarray(params["w"], np.float64), np.asarray(y)
  z = np.asarray(x, np.float64) @ w
  robust = []
  for i in range(len(y)):
    gaps = [z[i, y[i]] - z[i, j] - eps * np.linalg.norm(w[:, y[i]] - w[:, j], dual_order)
            for j in range(CLASSES) if j != y[i]]
    robust.append(np.argmax(z[i]) == y[i] and min(gaps) >= 0)
  return np.array(robust)


@pytest.mark.parametrize("norm, dual_order, levels", [
    ("linf", 1, (0.05, 0.2)),
    ("l2", 2, (0.2, 0.4)),
])
def test_robust_accuracy_is_the_linear_models_closed_form_at_each_traced_eps(norm, dual_order,
                                                                           levels):
  params, x, y, keys = linear_problem()
  for eps in levels:
    outcome = linear_ensemble(norm)(jnp.float32(eps), params, x, y, keys)
    result = attacks.robust_accuracy(outcome)
    expected = closed_form_robust(params, x, y, eps, dual_order)
    assert 0 < expected.sum() < 14  # some of the 14 correct break, some do not
    np.testing.assert_array_equal(np.asarray(outcome.correct) & (np.asarray(outcome.first) < 0),
                                  expected)
    assert float(result["robust"]) == pytest.approx(np.mean(expected))
    # The bookkeeping agrees with the predictions on the returned points.
    assert float(result["robust"]) == pytest.approx(
        np.mean(np.asarray(predict(linear_logits, params, outcome.x_adv)) == np.asarray(y)))
    assert float(result["clean"]) == pytest.approx(14 / 16)
    size = perturbation.within_linf if norm == "linf" else perturbation.within_l2
    assert np.all(jax.vmap(size, (0, 0, None))(x, outcome.x_adv, eps))
    assert float(result["grad_zero_share"]) == 0 and float(result["no_gain_share"]) == 0
    assert set(result) >= set(COMPONENTS) | {"square_only"}
  # The sweep compiled once, each level checked against the closed form above (a stronger
  # check than equality with a build at that concrete eps, at a third of the compiles).
  assert linear_ensemble(norm)._cache_size() == 1


def alone(attack, params, x, y, keys):
  return jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))(params, x, y, keys)


def misclassified(params, v, label):
  return jnp.argmax(linear_logits(params, v)) != label


@pytest.mark.parametrize("norm, num_steps, seed, eps, breakers", [
    # APGD-T breaks examples that APGD-CE leaves (APGD-CE picks the wrong class).
    ("linf", STEPS, 1, 0.12, {0, 1}),
    # One L2 step: APGD's, from a random point of the sphere, misses the steepest direction;
    # FAB-T's, from x, lands 5 % past the closest point: FAB-T breaks some that APGD leaves
    # (one of them only with its second target).
    ("l2", 1, 3, 0.225, {0, 1, 2}),
])
def test_worst_case_keeps_the_first_success_and_beats_every_component_alone(norm, num_steps, seed,
                                                                            eps, breakers):
  params, x, y, keys = linear_problem(seed)
  outcome = linear_ensemble(norm, num_steps)(jnp.float32(eps), params, x, y, keys)
  component_keys = lambda c, i: jax.vmap(
      lambda k: jax.random.fold_in(jax.random.fold_in(k, c), i))(keys)
  fooled = lambda v: np.asarray(predict(linear_logits, params, v)) != np.asarray(y)
  settings = dict(eps=eps, norm=norm, num_steps=num_steps, unroll=False)
  ce = attacks.apgd(losses.softmax_cross_entropy(linear_logits), **settings,
                    is_adversarial=misclassified)
  runs = [(0, alone(ce, params, x, y, component_keys(0, 0)))]
  ranked = np.argsort(-np.asarray(x @ params["w"]), axis=-1)  # targets: the classes after the top
  targeted = attacks.apgd(losses.dlr_targeted_loss(linear_logits), **settings,
                          is_adversarial=lambda p, v, pair: misclassified(p, v, pair[0]))
  fab = attacks.fab_targeted(linear_logits, **settings)
  for component, attack in ((1, targeted), (2, fab)):
    attack = jax.jit(jax.vmap(attack, in_axes=(None, 0, 0, 0)))  # compiled once for the targets
    for t in range(TARGETS):
      pairs = jnp.stack([y, jnp.asarray(ranked[:, t + 1])], axis=-1)
      runs.append((component, attack(params, x, pairs, component_keys(component, t))))
  square_keys = jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys)
  runs.append((3, alone(attacks.square(linear_logits, eps=eps, norm=norm, num_queries=QUERIES),
                        params, x, y, square_keys)))
  correct = np.asarray(predict(linear_logits, params, x)) == np.asarray(y)
  first, x_adv = np.full(SIZE, -1), np.asarray(x).copy()
  for component, v in reversed(runs):  # the earliest fooling run wins
    hit = correct & fooled(v)
    first, x_adv = np.where(hit, component, first), np.where(hit[:, None], v, x_adv)
  np.testing.assert_array_equal(outcome.first, first)
  np.testing.assert_allclose(outcome.x_adv, x_adv, rtol=0, atol=1e-6)
  assert set(first.tolist()) - {-1} == breakers
  result = attacks.robust_accuracy(outcome)
  alone_robust = {name: np.mean(correct & ~np.any([fooled(v) for c, v in runs if c == index],
                                                  axis=0))
                  for index, name in enumerate(COMPONENTS)}
  assert float(result["apgd-ce"]) == pytest.approx(alone_robust["apgd-ce"])
  assert all(float(result["robust"]) <= r + 1e-9 for r in alone_robust.values())
  assert float(result["robust"]) < alone_robust["apgd-ce"]
  cumulative = [float(result[name]) for name in COMPONENTS]
  assert cumulative == sorted(cumulative, reverse=True) and cumulative[-1] == result["robust"]


def test_traces_once_per_shape_same_key_same_bits_and_batch_independent():
  params, x, y, keys = linear_problem()
  ensemble = linear_ensemble("linf")
  first = ensemble(jnp.float32(0.1), params, x, y, keys)
  ensemble(jnp.float32(0.2), jax.tree.map(lambda a: 2.0 * a, params), x + 0.1, y, keys[::-1])
  assert ensemble._cache_size() == 1
  again = ensemble(jnp.float32(0.1), params, x, y, keys)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  other = ensemble(jnp.float32(0.1), params, x, y, jax.random.split(jax.random.PRNGKey(9), SIZE))
  assert not np.array_equal(other.x_adv, first.x_adv)
  # The first half's results whatever the other half of the batch holds.
  _, x2, y2, keys2 = linear_problem(5)
  half = SIZE // 2
  mixed = ensemble(jnp.float32(0.1), params, x.at[half:].set(x2[half:]),
                   y.at[half:].set(y2[half:]), keys.at[half:].set(keys2[half:]))
  for a, b in zip(first, mixed):
    np.testing.assert_allclose(a[:half], b[:half], rtol=0, atol=1e-6)


def masked_logits(threshold, x):
  """Four classes: 0 while more than `threshold` inputs round to 1; `jnp.round` has a zero
  gradient, so gradient attacks see nothing. (Scaled so that the cross-entropy is not 0.)"""
  return jnp.stack([jnp.sum(jnp.round(x)) - threshold, 0.0, -1.0, -2.0]) / 16


def test_diagnostics_flag_masked_gradients_and_square_succeeds_where_pgd_and_apgd_fail():
  # Every input rounds to 1; class 0 loses once 40 of the 64 are pushed below 0.5 (by at least
  # 0.12 of the 0.15 budget: a random start in the ball pushes each with chance ~0.2). The box
  # and the SNR floor bind (a push up stops at 0.7; pushes of 0.15 on inputs of RMS 0.6 have an
  # SNR of 12 dB) but leave pushes down of more than 0.12.
  kx, kk = jax.random.split(jax.random.PRNGKey(0))
  x = 0.6 + jax.random.uniform(kx, (4, 8, 8), minval=-0.02, maxval=0.02)
  y, keys, threshold = jnp.zeros(4, jnp.int32), jax.random.split(kk, 4), jnp.float32(24.5)
  eps, snr_db = 0.15, 12.5
  outcome = sweep(masked_logits, num_steps=3, num_queries=300, bounds=(0.0, 0.7),
                  snr_db=snr_db)(jnp.float32(eps), threshold, x, y, keys)
  result = attacks.robust_accuracy(outcome)
  assert float(result["clean"]) == 1.0 and float(result["grad_zero_share"]) == 1.0
  assert float(result["grad_nonfinite_share"]) == 0 and float(result["no_gain_share"]) == 1.0
  assert float(result["loss_gain"]) == 0
  assert float(result["fab-t"]) == 1.0  # the gradient attacks fail ...
  assert float(result["square_only"]) == 1.0 and float(result["robust"]) == 0.0  # Square wins
  np.testing.assert_array_equal(predict(masked_logits, threshold, outcome.x_adv), 1)
  # ... in the budget: the ball, the SNR floor and the box, the last two binding (for some).
  within = lambda metric, level: np.asarray(jax.vmap(metric, (0, 0, None))(
      x, outcome.x_adv, level))
  assert np.all(within(perturbation.within_linf, eps))
  assert np.all(within(perturbation.above_snr, snr_db))
  assert not np.all(within(perturbation.above_snr, snr_db + 0.5))
  assert np.all(outcome.x_adv <= 0.7) and np.any(outcome.x_adv == 0.7)
  # PGD fails too.
  pgd = attacks.pgd(losses.softmax_cross_entropy(masked_logits), eps=eps, step_size=0.05,
                    num_steps=3)
  np.testing.assert_array_equal(predict(masked_logits, threshold,
                                        alone(pgd, threshold, x, y, keys)), 0)


def test_a_nonfinite_point_is_never_a_success():
  # A NaN input gradient everywhere: Linf APGD steps to NaN points (the sign of NaN), whose NaN
  # logits have an argmax (0) that is not the label of most, yet they are no adversarial
  # examples; the ball is too small to hold any.
  params, x, y, keys = linear_problem()
  eps = 0.001
  assert np.mean(closed_form_robust(params, x, y, eps, 1)) == 14 / 16
  outcome = linear_ensemble("linf")(jnp.float32(eps), {**params, "c": jnp.float32(0.0)}, x, y,
                                    keys)
  result = attacks.robust_accuracy(outcome)
  assert float(result["grad_nonfinite_share"]) == 1.0
  assert float(result["robust"]) == float(result["clean"]) == 14 / 16
  assert np.all(np.isfinite(outcome.x_adv))


def test_l2_square_breaks_what_gradient_attacks_miss_when_gradients_are_nan():
  # L2 APGD's unit direction of a NaN gradient is 0: only its random starts can break an
  # example. Square, gradient-free, reaches the closed form's robust accuracy.
  params, x, y, keys = linear_problem()
  eps = 0.2
  outcome = linear_ensemble("l2")(jnp.float32(eps), {**params, "c": jnp.float32(0.0)}, x, y,
                                  keys)
  result = attacks.robust_accuracy(outcome)
  assert float(result["grad_nonfinite_share"]) == 1.0 and float(result["no_gain_share"]) == 1.0
  assert float(result["square_only"]) > 0
  assert float(result["robust"]) == pytest.approx(np.mean(closed_form_robust(params, x, y, eps,
                                                                             2)))
  assert np.all(jax.vmap(perturbation.within_l2, (0, 0, None))(x, outcome.x_adv, eps))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(norm="l1"), ValueError, "norm"),
    (dict(eps=-0.1), ValueError, "eps"),
    (dict(num_target_classes=0), ValueError, "num_target_classes"),
    (dict(num_queries=0), ValueError, "num_queries"),
    (dict(num_restarts=0), ValueError, "num_restarts"),
    (dict(num_steps=0), ValueError, "num_steps"),
    (dict(p_init=2.0), ValueError, "p_init"),
    (dict(rho=1.5), ValueError, "rho"),
    (dict(snr_db=float("nan")), ValueError, "snr_db"),
    (dict(bounds=(1.0, -1.0)), ValueError, "bounds"),
    (dict(ce_loss=None), TypeError, "ce_loss"),
])
def test_rejects_invalid_arguments(kwargs, error, match):
  arguments = dict(eps=0.1, ce_loss=losses.softmax_cross_entropy(linear_logits),
                   dlr_targeted_loss=losses.dlr_targeted_loss(linear_logits))
  with pytest.raises(error, match=match):
    attacks.auto_attack(linear_logits, **{**arguments, **kwargs})


def test_rejects_invalid_labels_and_logits_when_traced():
  params, x, y, keys = linear_problem()
  ensemble = make(linear_logits, 0.1)
  with pytest.raises(TypeError, match="integer"):
    jax.eval_shape(ensemble, params, x[0], 1.0, keys[0])
  with pytest.raises(ValueError, match=r"logits \[classes\]"):
    jax.eval_shape(make(lambda p, v: jnp.outer(v, v), 0.1), params, x[0], y[0], keys[0])
