"""Tests of the gradient attacks on closed-form toy models, against closed forms written here.

Each reference computes the input gradient with `jax.grad` in the test and applies the published
update with numpy (sign step, unit-L2 step, momentum, clipping to the ball and to the box), so it
shares no code with `soundjax.attacks` beyond the toy loss. Attacks are jitted once per module.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks, frontend
from soundjax.losses import model_logits, softmax_cross_entropy
from soundjax.metrics import perturbation
from tests.toys import (
  CLASSES,
  LINEAR_LOSS,
  MLP_LOSS,
  assert_budget_sweep_compiles_once,
  batch,
  batch_loss,
  batched,
  linear_logits,
  linear_params,
  mlp_params,
  predict,
  sizes,
)

BOUNDS = (-0.5, 0.5)  # the toy batches fill this box, so clipping to it matters
EPS = 0.1
FGSM_20DB = batched(attacks.fgsm_snr(MLP_LOSS, snr_db=20.0))


@functools.cache
def budgeted(name):
  """Attacks under (EPS, BOUNDS), keyed by name, each jitted once."""
  common = dict(eps=EPS, bounds=BOUNDS)
  steps = dict(common, step_size=EPS / 3, num_steps=5)
  norm = "l2" if name.endswith("_l2") else "linf"
  make = {
      "fgsm": lambda: attacks.fgsm(MLP_LOSS, norm=norm, **common),
      "bim": lambda: attacks.bim(MLP_LOSS, norm=norm, **steps),
      "pgd": lambda: attacks.pgd(MLP_LOSS, norm=norm, num_restarts=2, **steps),
      "mi_fgsm": lambda: attacks.mi_fgsm(MLP_LOSS, **steps),
      "fgsm_snr": lambda: attacks.fgsm_snr(MLP_LOSS, snr_db=20.0, bounds=BOUNDS),
      "white_noise": lambda: attacks.white_noise(snr_db=20.0, bounds=BOUNDS),
  }[name.removesuffix("_l2")]
  return batched(make())


@functools.cache
def _input_grad(loss_fn):
  return jax.jit(jax.vmap(jax.grad(loss_fn, argnums=1), (None, 0, 0)))


def input_grad(params, x, y, loss_fn=MLP_LOSS):
  """The test's own per-example input gradient, as float64 numpy."""
  return np.asarray(_input_grad(loss_fn)(params, jnp.asarray(x, jnp.float32), y), np.float64)


def reference_steps(params, x, y, x_start, *, eps, step_size, num_steps, decay=None, order=1):
  """The Linf iterates of BIM/PGD (decay None) or MI-FGSM, with projections written here."""
  x, x_adv, momentum, iterates = np.asarray(x), np.asarray(x_start, np.float64), 0.0, []
  for _ in range(num_steps):
    g = input_grad(params, x_adv, y)
    if decay is not None:  # Dong et al.: mu g + grad / ||grad||_1 (order 1), per example
      momentum = decay * momentum + g / np.linalg.norm(g, ord=order, axis=-1, keepdims=True)
      g = momentum
    x_adv = np.clip(np.clip(x_adv + step_size * np.sign(g), x - eps, x + eps), *BOUNDS)
    iterates.append(x_adv)
  return iterates


@pytest.mark.parametrize("name", ["bim", "pgd", "mi_fgsm"])
@pytest.mark.parametrize("steps, match", [
    (dict(), "exactly one of step_size and step_factor"),
    (dict(step_size=0.1, step_factor=2.5), "exactly one of step_size and step_factor"),
    (dict(step_factor=0.0), "step_factor"),
])
def test_iterative_attacks_take_one_step_rule(name, steps, match):
  with pytest.raises(ValueError, match=match):
    getattr(attacks, name)(LINEAR_LOSS, eps=0.1, num_steps=2, **steps)


def test_step_factor_scales_each_step_by_the_clips_budget_radius():
  # BIM from zero on the MLP: with `step_factor` the steps are the closed form's with
  # step_size = factor * radius / steps, the radius eps, or under an SNR floor that binds,
  # RMS(x) 10^(-snr / 20) of each clip (its own step per clip; one sign step of that size sits on
  # the floor); the sweep over SNR compiles once.
  params, (x, y, keys) = mlp_params(), batch(2)
  for snr_db, factor, num_steps in ((None, 2.0, 2), (30.0, 1.0, 1)):
    radius = np.full(len(x), EPS) if snr_db is None else np.minimum(
        EPS, np.sqrt(np.mean(np.asarray(x, np.float64) ** 2, -1)) * 10 ** (-snr_db / 20))
    got = batched(attacks.bim(MLP_LOSS, eps=EPS, step_factor=factor, num_steps=num_steps,
                              snr_db=snr_db, bounds=BOUNDS))(params, x, y, keys)
    for i in range(len(x)):
      expected = reference_steps(params, x[i:i + 1], y[i:i + 1], x[i:i + 1], eps=radius[i],
                                 step_size=factor * radius[i] / num_steps,
                                 num_steps=num_steps)
      np.testing.assert_allclose(got[i], expected[-1][0], rtol=0, atol=1e-6)
    if snr_db is not None:
      assert np.ptp(radius) > 0 and np.all(radius < EPS)  # per clip, and the floor binds
  sweep = jax.jit(lambda snr, *args: jax.vmap(attacks.pgd(
      MLP_LOSS, eps=EPS, step_factor=2.5, num_steps=2, snr_db=snr), in_axes=(None, 0, 0, 0))(
          *args))
  for snr_db in (20.0, 30.0, 40.0):
    sweep(jnp.float32(snr_db), params, x, y, keys)
  assert sweep._cache_size() == 1


@pytest.mark.parametrize("make, match", [
    (lambda: attacks.fgsm(LINEAR_LOSS, eps=-0.1), "eps"),
    (lambda: attacks.fgsm(LINEAR_LOSS, eps=float("nan")), "eps"),
    (lambda: attacks.fgsm(LINEAR_LOSS, eps=0.1, norm="l1"), "norm"),
    (lambda: attacks.fgsm(LINEAR_LOSS, eps=0.1, bounds=(1.0, -1.0)), "bounds"),
    (lambda: attacks.bim(LINEAR_LOSS, eps=0.1, step_size=0.0, num_steps=3), "step_size"),
    (lambda: attacks.bim(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=0), "num_steps"),
    (lambda: attacks.pgd(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=2, norm="l0"), "norm"),
    (lambda: attacks.pgd(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=2, num_restarts=0),
     "num_restarts"),
    (lambda: attacks.pgd(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=2, bounds=(0.0, 0.0)),
     "bounds"),
    (lambda: attacks.mi_fgsm(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=2, decay=-1.0),
     "decay"),
    (lambda: attacks.bim(LINEAR_LOSS, eps=0.1, step_size=0.1, num_steps=2,
                         snr_db=float("inf")), "snr_db"),
    (lambda: attacks.fgsm_snr(LINEAR_LOSS, snr_db=float("nan")), "snr_db"),
    (lambda: attacks.white_noise(snr_db=float("-inf")), "snr_db"),
    (lambda: attacks.white_noise(snr_db=20.0, bounds=(1.0, -1.0)), "bounds"),
])
def test_factories_reject_invalid_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_fgsm_linf_is_the_clipped_sign_step():
  params, (x, y, keys) = mlp_params(), batch(1)
  unclipped = x + EPS * np.sign(input_grad(params, x, y))
  expected = np.clip(unclipped, *BOUNDS)
  assert np.any(expected != unclipped)  # the box is active
  np.testing.assert_allclose(budgeted("fgsm")(params, x, y, keys), expected, rtol=0, atol=1e-7)


def test_fgsm_l2_is_the_clipped_unit_gradient_step():
  params, (x, y, keys) = mlp_params(), batch(1)
  g = input_grad(params, x, y)
  expected = np.clip(x + EPS * g / np.linalg.norm(g, axis=-1, keepdims=True), *BOUNDS)
  np.testing.assert_allclose(budgeted("fgsm_l2")(params, x, y, keys), expected, rtol=0,
                             atol=1e-6)


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_bim_and_pgd_follow_the_closed_form_step_by_step(num_steps):
  params, (x, y, keys) = mlp_params(), batch(2)
  steps = dict(eps=EPS, step_size=0.04, num_steps=num_steps, bounds=BOUNDS)
  bim = batched(attacks.bim(MLP_LOSS, **steps))(params, x, y, keys)
  expected = reference_steps(params, x, y, x, eps=EPS, step_size=0.04, num_steps=num_steps)
  np.testing.assert_allclose(bim, expected[-1], rtol=0, atol=1e-6)
  # PGD starts uniformly in the ball, drawn from the example's key, inside the box.
  start = jax.vmap(lambda k, v: jax.random.uniform(k, v.shape, v.dtype, -EPS, EPS))(keys, x)
  start = np.clip(x + np.asarray(start), *BOUNDS)
  pgd = batched(attacks.pgd(MLP_LOSS, **steps))(params, x, y, keys)
  expected = reference_steps(params, x, y, start, eps=EPS, step_size=0.04, num_steps=num_steps)
  np.testing.assert_allclose(pgd, expected[-1], rtol=0, atol=1e-6)
  assert np.mean(np.abs(pgd - start) > 0.01) > 0.5  # most elements stepped


def test_mi_fgsm_follows_the_momentum_closed_form():
  # A batch (found by search) where the gradient's size varies enough between steps that its L1
  # weighting flips a sign step: momentum and its normalisation both show in the result.
  params, (x, y, keys) = mlp_params(0), batch(3, size=8)
  steps = dict(eps=EPS, step_size=0.03, num_steps=5)
  x_adv = batched(attacks.mi_fgsm(MLP_LOSS, decay=1.0, bounds=BOUNDS, **steps))(params, x, y,
                                                                                keys)
  expected = reference_steps(params, x, y, x, decay=1.0, **steps)[-1]
  np.testing.assert_allclose(x_adv, expected, rtol=0, atol=1e-6)
  assert not np.allclose(expected, reference_steps(params, x, y, x, **steps)[-1])
  assert not np.allclose(expected, reference_steps(params, x, y, x, decay=1.0, order=2,
                                                   **steps)[-1])


def test_mi_fgsm_without_momentum_equals_bim():
  x, y, keys = batch(2)
  steps = dict(eps=EPS, step_size=0.03, num_steps=6, bounds=BOUNDS)
  mi = batched(attacks.mi_fgsm(MLP_LOSS, decay=0.0, **steps))
  bim = batched(attacks.bim(MLP_LOSS, **steps))
  np.testing.assert_array_equal(mi(mlp_params(), x, y, keys), bim(mlp_params(), x, y, keys))


def test_pgd_loss_at_least_fgsm_loss():
  # Cross-entropy of a linear model is convex in x, so each full sign step to a vertex of the
  # Linf ball cannot lower it: PGD from x with step eps dominates FGSM per example.
  params, (x, y, keys) = linear_params(), batch(3, size=8)
  fgsm = batched(attacks.fgsm(LINEAR_LOSS, eps=EPS))
  pgd = batched(attacks.pgd(LINEAR_LOSS, eps=EPS, step_size=EPS, num_steps=5,
                            random_start=False))
  fgsm_loss = batch_loss(LINEAR_LOSS, params, fgsm(params, x, y, keys), y)
  pgd_loss = batch_loss(LINEAR_LOSS, params, pgd(params, x, y, keys), y)
  assert np.all(pgd_loss >= fgsm_loss - 1e-6)


def test_targeted_pgd_reaches_the_target():
  params, (x, y, keys) = linear_params(), batch(5, size=8)
  target = (y + 1) % CLASSES
  attack = batched(attacks.pgd(attacks.targeted(LINEAR_LOSS), eps=2.0, step_size=0.2,
                               num_steps=20))
  x_adv = attack(params, x, target, keys)
  np.testing.assert_array_equal(predict(linear_logits, params, x_adv), target)


def test_fgsm_snr_and_white_noise_hit_the_snr_exactly():
  params, (x, y, keys) = mlp_params(), batch(6)
  for attack in (FGSM_20DB, batched(attacks.white_noise(snr_db=20.0))):
    x_adv = attack(params, x, y, keys)
    np.testing.assert_allclose(sizes(perturbation.snr_db, x, x_adv), 20.0, atol=1e-3)
  # The paper's FGSM moves every sample by the same amount, along the gradient's sign.
  x_adv = FGSM_20DB(params, x, y, keys)
  grads = input_grad(params, x, y)
  amplitude = np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True)) / 10.0
  np.testing.assert_allclose(x_adv, x + amplitude * np.sign(grads), rtol=0, atol=1e-6)


def test_zero_gradient_gives_finite_unchanged_input():
  zero = jax.tree.map(jnp.zeros_like, mlp_params())
  x, y, keys = batch(7)
  for name in ("fgsm", "bim_l2", "mi_fgsm", "fgsm_snr"):
    np.testing.assert_array_equal(budgeted(name)(zero, x, y, keys), x)
  x_adv = budgeted("pgd_l2")(zero, x, y, keys)  # moved only by the random start
  assert np.all(np.isfinite(x_adv))
  np.testing.assert_array_equal(FGSM_20DB(zero, x, y, keys), x)


@pytest.mark.parametrize("name", ["fgsm", "bim_l2", "pgd", "mi_fgsm", "fgsm_snr", "white_noise"])
def test_traces_once_per_shape_and_same_key_gives_same_result(name):
  attack = budgeted(name)
  (x, y, keys), (x2, y2, keys2) = batch(8), batch(9)
  first = attack(mlp_params(), x, y, keys)
  attack(mlp_params(1), x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(mlp_params(), x, y, keys), first)
  if name in ("pgd", "white_noise"):  # the random ones: another key, other bits
    assert not np.array_equal(attack(mlp_params(), x, y, keys2), first)


class _TinyMelNet(nn.Module):
  """Log-mel features -> mean over frames -> dense logits."""

  @nn.compact
  def __call__(self, x, train=False):
    del train
    return nn.Dense(CLASSES)(jnp.mean(x, axis=1))


def test_attacks_perturb_audio_through_the_front_end():
  front = frontend.log_mel(sample_rate=8000, n_fft=64, hop_length=32, n_mels=8)
  model = _TinyMelNet()
  logits_fn = model_logits(model, frontend=front)
  loss_fn = softmax_cross_entropy(logits_fn)
  kx, kp, kk = jax.random.split(jax.random.PRNGKey(10), 3)
  x = 0.1 * jax.random.normal(kx, (2, 256))
  frames = frontend.num_frames(256, n_fft=64, hop_length=32)
  params = jax.jit(model.init)(kp, jnp.zeros((1, frames, 8)))
  # Not the predicted class: its loss is far from saturation, so every step must raise it.
  y = (predict(logits_fn, params, x) + 1) % CLASSES
  x_adv = batched(attacks.pgd(loss_fn, eps=0.01, step_size=0.005, num_steps=3,
                              bounds=(-1.0, 1.0), snr_db=20.0))(params, x, y,
                                                                jax.random.split(kk, 2))
  assert x_adv.shape == x.shape
  assert np.all(jax.vmap(perturbation.within_linf, (0, 0, None))(x, x_adv, 0.01))
  assert np.all(jax.vmap(perturbation.above_snr, (0, 0, None))(x, x_adv, 20.0))
  assert np.all(batch_loss(loss_fn, params, x_adv, y) > batch_loss(loss_fn, params, x, y))


@pytest.mark.parametrize("make, levels", [
    (lambda eps: attacks.pgd(MLP_LOSS, eps=eps, step_size=0.01, num_steps=3, norm="linf"),
     (0.01, 0.05, 0.2)),
    (lambda eps: attacks.pgd(MLP_LOSS, eps=eps, step_size=0.05, num_steps=3, norm="l2"),
     (0.05, 0.3)),
    (lambda eps: attacks.fgsm(MLP_LOSS, eps=eps, bounds=(-0.5, 0.5)), (0.01, 0.1)),
    (lambda snr: attacks.fgsm_snr(MLP_LOSS, snr_db=snr), (40.0, 10.0)),
])
def test_a_budget_sweep_compiles_once_and_equals_each_concrete_budget(make, levels):
  assert_budget_sweep_compiles_once(make, mlp_params(0), *batch(7), levels)
