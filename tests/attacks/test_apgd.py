"""Tests of Auto-PGD against a numpy re-implementation of the AutoAttack reference's loop.

`reference_apgd` follows `autoattack/autopgd_base.py` (`APGDAttack.attack_single_run`, Linf and
L2) statement by statement, in float64 with closed-form gradients of a quadratic toy, so it
shares no code with `soundjax.attacks`: its counter of steps since the last checkpoint, its
buffer of losses and its shrinking period stand where the attack has a precomputed schedule.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks, losses, models
from soundjax.attacks.auto_pgd import apgd_checkpoints
from soundjax.metrics import perturbation
from tests.toys import (
  MLP_LOSS,
  assert_budget_sweep_compiles_once,
  batch,
  batch_loss,
  batched,
  mlp_params,
  sizes,
)

# An interior maximum: sign steps of a fixed size oscillate around it; halving closes in.
CENTRE, WEIGHTS = np.array([0.3137, -0.6021]), np.array([1.0, 2.3])


def quadratic_loss(params, x, y):
  del y
  return -jnp.sum(params * (x - jnp.asarray(CENTRE, x.dtype)) ** 2)


def reference_apgd(x, eps, n, *, norm, box=None, rho=0.75, adversarial=lambda v: False):
  """The reference's loop on `quadratic_loss`: the best point; per checkpoint, (step count,
  condition 1, condition 2); the losses at the start and after each step; and its `x_best_adv`,
  the last iterate `adversarial` accepts (the start if none). The first rise is counted against
  the start's loss."""
  f = lambda v: -np.sum(WEIGHTS * (v - CENTRE) ** 2)
  grad_f = lambda v: -2 * WEIGHTS * (v - CENTRE)

  def project(v):
    d = v - x
    if norm == "linf":
      d = np.clip(d, -eps, eps)
    elif np.linalg.norm(d) > eps:
      d = d * eps / np.linalg.norm(d)
    return np.clip(x + d, *box) if box else x + d

  unit = np.sign if norm == "linf" else lambda g: g / (np.linalg.norm(g) + 1e-12)
  k, shortest, shrink = max(int(0.22 * n), 1), max(int(0.06 * n), 1), max(int(0.03 * n), 1)
  x_adv = project(x)
  loss_start, grad = f(x_adv), grad_f(x_adv)
  x_best, grad_best, loss_best = x_adv, grad, loss_start
  step, x_old, counter, loss_steps = 2 * eps, x_adv, 0, np.zeros(n)
  loss_best_last_check, reduced_last_check, log = loss_best, True, []
  x_best_adv = x_adv
  for i in range(n):
    grad2, x_old = x_adv - x_old, x_adv
    a = 0.75 if i > 0 else 1.0
    x_adv_1 = project(x_adv + step * unit(grad))
    x_adv = project(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a))
    loss_steps[i], grad = f(x_adv), grad_f(x_adv)
    if adversarial(x_adv):
      x_best_adv = x_adv
    if loss_steps[i] > loss_best:
      x_best, grad_best, loss_best = x_adv, grad, loss_steps[i]
    counter += 1
    if counter == k:
      rises = sum(loss_steps[i - c] > (loss_steps[i - c - 1] if i - c > 0 else loss_start)
                  for c in range(k))
      oscillation = rises <= k * rho
      no_improvement = not reduced_last_check and loss_best_last_check >= loss_best
      log.append((i + 1, oscillation, no_improvement))
      reduced_last_check = oscillation or no_improvement
      loss_best_last_check = loss_best
      if reduced_last_check:
        step /= 2.0
        x_adv, grad = x_best, grad_best
      k, counter = max(k - shrink, shortest), 0
  return x_best, log, np.concatenate([[loss_start], loss_steps]), x_best_adv


def test_checkpoints_follow_the_published_schedule():
  # The paper's p_j = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 times 100 steps.
  assert apgd_checkpoints(100) == (22, 41, 57, 70, 80, 87, 93, 99)
  # The reference's integer periods: 30 steps -> 6, 5, 4, 3, 2, then 1 (its floor of 0.06 n).
  assert apgd_checkpoints(30) == (6, 11, 15, 18, 20) + tuple(range(21, 31))
  assert apgd_checkpoints(10) == tuple(range(2, 11))
  assert apgd_checkpoints(1) == (1,)


@pytest.mark.parametrize("norm, num_steps, box, alone", [
    ("linf", 10, None, False),
    ("linf", 30, None, False),
    ("l2", 20, None, True),
    ("l2", 30, None, True),
    ("linf", 20, (-0.5, 0.5), True),
])
def test_trajectory_and_step_halving_match_the_reference(norm, num_steps, box, alone):
  x = np.zeros(2)
  expected, log, _, _ = reference_apgd(x, 1.0, num_steps, norm=norm, box=box)
  attack = jax.jit(attacks.apgd(quadratic_loss, eps=1.0, num_steps=num_steps, norm=norm,
                                random_start=False, bounds=box, unroll=False))
  x_adv = attack(jnp.asarray(WEIGHTS, jnp.float32), jnp.zeros(2), jnp.int32(0),
                 jax.random.PRNGKey(0))
  np.testing.assert_allclose(x_adv, expected, rtol=0, atol=2e-7)
  # The toy exercises the rule: both conditions halve the step, condition 2 alone in some.
  assert any(c1 for _, c1, _ in log)
  assert any(c2 and not c1 for _, c1, c2 in log) == alone
  assert [point for point, _, _ in log] == list(apgd_checkpoints(num_steps))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_trace_and_adversarial_iterate_match_the_reference(norm):
  # The toy's iterates cross x[1] = -0.3 back and forth: the last one below it is kept.
  adversarial = lambda v: v[1] < -0.3
  x, weights, y, key = np.zeros(2), jnp.asarray(WEIGHTS, jnp.float32), jnp.int32(0), None
  best, _, losses, best_adv = reference_apgd(x, 1.0, 20, norm=norm, adversarial=adversarial)
  assert adversarial(best_adv) and not np.allclose(best_adv, best)
  make = functools.partial(attacks.apgd, quadratic_loss, eps=1.0, num_steps=20, norm=norm,
                           random_start=False, unroll=False)
  x_adv, trace = jax.jit(make(return_trace=True))(weights, jnp.zeros(2), y, key)
  np.testing.assert_allclose(x_adv, best, rtol=0, atol=2e-7)
  np.testing.assert_allclose(trace.losses, losses, rtol=1e-5, atol=1e-6)
  assert trace.best_loss == np.max(trace.losses) and not trace.found
  found = jax.jit(make(is_adversarial=lambda params, v, y: adversarial(v)))
  np.testing.assert_allclose(found(weights, jnp.zeros(2), y, key), best_adv, rtol=0, atol=2e-7)


def test_restarts_keep_the_first_run_that_found_an_adversarial_iterate():
  # As the reference's restarts: the first run that found an adversarial iterate wins; where
  # none did, the highest loss.
  accept = lambda params, v, y: v[1] > 0.0  # away from the maximum at x[1] = -0.6
  weights, x = jnp.asarray(WEIGHTS, jnp.float32), jnp.zeros((8, 2))
  y, keys = jnp.zeros(8, jnp.int32), jax.random.split(jax.random.PRNGKey(1), 8)
  make = functools.partial(attacks.apgd, quadratic_loss, eps=0.6, num_steps=3, unroll=False,
                           is_adversarial=accept, return_trace=True)
  x_adv, trace = batched(make(num_restarts=3))(weights, x, y, keys)
  runs = [batched(make())(weights, x, y, jax.vmap(lambda k: jax.random.split(k, 3)[r])(keys))
          for r in range(3)]
  highest_loss_differs = False
  for i in range(len(x)):
    found = [r for r, (_, t) in enumerate(runs) if t.found[i]]
    highest = int(np.argmax([t.best_loss[i] for _, t in runs]))
    keep = found[0] if found else highest
    np.testing.assert_array_equal(x_adv[i], runs[keep][0][i])
    assert trace.found[i] == bool(found)
    highest_loss_differs |= keep != highest
  # Every case occurs: no run found one, a later run did, the highest loss is not kept.
  assert 0 < np.sum(trace.found) < len(x) and highest_loss_differs
  assert any(not runs[0][1].found[i] and trace.found[i] for i in range(len(x)))


def test_straight_and_looped_steps_agree():
  params, (x, y, keys) = mlp_params(1), batch(4)
  make = functools.partial(attacks.apgd, MLP_LOSS, eps=0.2, num_steps=4, norm="l2")
  straight = batched(make(unroll=True))(params, x, y, keys)
  looped = batched(make(unroll=False))(params, x, y, keys)
  np.testing.assert_allclose(straight, looped, rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_on_the_sphere(norm):
  # A constant loss never rises, so the start is the best point and comes back unchanged.
  constant = lambda params, x, y: jnp.sum(0.0 * x)
  x, y, keys = batch(5)
  x_adv = batched(attacks.apgd(constant, eps=0.1, num_steps=3, norm=norm))(None, x, y, keys)
  size = perturbation.linf if norm == "linf" else perturbation.l2
  np.testing.assert_allclose(sizes(size, x, x_adv), 0.1, rtol=1e-5)
  assert len(np.unique(np.round(np.asarray(x_adv - x), 6), axis=0)) == len(x)
  fixed = batched(attacks.apgd(constant, eps=0.1, num_steps=3, random_start=False))
  np.testing.assert_array_equal(fixed(None, x, y, keys), x)


def test_apgd_reaches_a_loss_at_least_pgds_at_equal_steps():
  # The interior maximum: PGD's fixed step keeps oscillating, APGD's halving converges.
  weights, x = jnp.asarray(WEIGHTS, jnp.float32), jnp.zeros((4, 2))
  y, keys = jnp.zeros(4, jnp.int32), jax.random.split(jax.random.PRNGKey(0), 4)
  apgd = batched(attacks.apgd(quadratic_loss, eps=1.0, num_steps=24))(weights, x, y, keys)
  pgd = batched(attacks.pgd(quadratic_loss, eps=1.0, step_size=0.25, num_steps=24))(
      weights, x, y, keys)
  apgd_loss, pgd_loss = (batch_loss(quadratic_loss, weights, v, y) for v in (apgd, pgd))
  assert np.all(apgd_loss > pgd_loss) and np.all(apgd_loss > -1e-3)
  # The MLP toy (cross-entropy, Linf): on average, not always per example.
  params, (x, y, keys) = mlp_params(1), batch(3, size=8)
  apgd = batched(attacks.apgd(MLP_LOSS, eps=0.2, num_steps=10, unroll=False))(params, x, y, keys)
  pgd = batched(attacks.pgd(MLP_LOSS, eps=0.2, step_size=0.05, num_steps=10))(params, x, y, keys)
  apgd_loss, pgd_loss = (batch_loss(MLP_LOSS, params, v, y) for v in (apgd, pgd))
  assert np.mean(apgd_loss) > np.mean(pgd_loss) + 1e-3


def test_apgd_reaches_a_loss_at_least_pgds_on_a_soundjax_victim():
  # A VGG victim of the adversarial experiment (tiny, random weights and BatchNorm statistics)
  # on log-mel-like inputs: APGD's mean loss after 10 steps is at least PGD's with Madry's step
  # 2.5 eps / steps, from the same starts.
  model = models.VGG(num_classes=6, channels=(4, 8))
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(0), (8, 16, 12))
  variables = model.init(jax.random.PRNGKey(1), x[:1])
  variables["batch_stats"] = jax.tree.map(
      lambda v: v + 0.3 * jax.random.uniform(jax.random.PRNGKey(2), v.shape), variables[
          "batch_stats"])
  loss_fn = losses.softmax_cross_entropy(losses.model_logits(model))
  y, keys = jnp.arange(8) % 6, jax.random.split(jax.random.PRNGKey(3), 8)
  eps, steps = 0.5, 10
  apgd = batched(attacks.apgd(loss_fn, eps=eps, num_steps=steps))(variables, x, y, keys)
  pgd = batched(attacks.pgd(loss_fn, eps=eps, step_size=2.5 * eps / steps, num_steps=steps))(
      variables, x, y, keys)
  apgd_loss, pgd_loss, clean_loss = (batch_loss(loss_fn, variables, v, y) for v in (apgd, pgd, x))
  assert np.all(apgd_loss > clean_loss)
  assert np.mean(apgd_loss) >= np.mean(pgd_loss)


@functools.cache
def restarted():
  return batched(attacks.apgd(MLP_LOSS, eps=0.1, num_steps=5, num_restarts=2,
                              bounds=(-0.5, 0.5), snr_db=10.0, unroll=False))


def test_traces_once_per_shape_and_same_key_gives_same_bits():
  attack = restarted()
  (x, y, keys), (x2, y2, keys2) = batch(8), batch(9)
  first = attack(mlp_params(), x, y, keys)
  attack(mlp_params(1), x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(mlp_params(), x, y, keys), first)
  assert not np.array_equal(attack(mlp_params(), x, y, keys2), first)
  # Every restart stays in the budget: ball, SNR floor and box.
  assert np.all(jax.vmap(perturbation.within_linf, (0, 0, None))(x, first, 0.1))
  assert np.all(jax.vmap(perturbation.above_snr, (0, 0, None))(x, first, 10.0))
  assert np.all((first >= -0.5) & (first <= 0.5))


def test_restarts_keep_the_highest_loss():
  params, (x, y, keys) = mlp_params(), batch(8)
  both = batch_loss(MLP_LOSS, params, restarted()(params, x, y, keys), y)
  single = batched(attacks.apgd(MLP_LOSS, eps=0.1, num_steps=5, bounds=(-0.5, 0.5),
                                snr_db=10.0, unroll=False))
  for key in (0, 1):  # the two keys `best_of` splits from each example's key
    runs = single(params, x, y, jax.vmap(lambda k: jax.random.split(k, 2)[key])(keys))
    assert np.all(both >= batch_loss(MLP_LOSS, params, runs, y) - 1e-6)


def test_an_eps_sweep_compiles_once_and_equals_each_concrete_eps():
  make = lambda eps: attacks.apgd(MLP_LOSS, eps=eps, num_steps=3, norm="l2", unroll=False)
  assert_budget_sweep_compiles_once(make, mlp_params(0), *batch(7), (0.3, 0.05), rtol=0,
                                    atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=-0.1), "eps"),
    (dict(norm="l1"), "norm"),
    (dict(num_steps=0), "num_steps"),
    (dict(num_restarts=0), "num_restarts"),
    (dict(rho=1.5), "rho"),
    (dict(momentum=-0.1), "momentum"),
    (dict(bounds=(1.0, -1.0)), "bounds"),
    (dict(snr_db=float("nan")), "snr_db"),
])
def test_rejects_invalid_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    attacks.apgd(MLP_LOSS, **{"eps": 0.1, "num_steps": 5, **kwargs})
