"""Tests of the attack parts and the gradient attacks on closed-form toy models.

The toys (a linear classifier and a one-hidden-layer MLP with plain jnp parameters) live in
`tests/toys.py`. Attacks are built and jitted once per module so that hypothesis examples reuse
the compiled code.
"""

import functools

import flax.linen as nn
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from soundjax import attacks, frontend
from soundjax.losses import model_logits, softmax_cross_entropy
from soundjax.metrics import perturbation
from tests.toys import (
  BATCH,
  CLASSES,
  LINEAR_LOSS,
  MLP_LOSS,
  batch,
  batch_loss,
  batched,
  linear_logits,
  linear_params,
  mlp_params,
  predict,
  sizes,
)

BOUNDS = (-0.5, 0.5)
EPS = 0.1
SETTINGS = hypothesis.settings(max_examples=10, deadline=None)
FGSM_20DB = batched(attacks.fgsm_snr(MLP_LOSS, snr_db=20.0))


@functools.cache
def budgeted(name):
  """Attacks under (EPS, BOUNDS, optional SNR floor), keyed by name, each jitted once."""
  common = dict(eps=EPS, bounds=BOUNDS)
  steps = dict(common, step_size=EPS / 3, num_steps=5)
  norm = "l2" if name.endswith("_l2") else "linf"
  make = {
      "fgsm": lambda: attacks.fgsm(MLP_LOSS, norm=norm, **common),
      "bim": lambda: attacks.bim(MLP_LOSS, norm=norm, **steps),
      "pgd": lambda: attacks.pgd(MLP_LOSS, norm=norm, num_restarts=2, **steps),
      "pgd_snr": lambda: attacks.pgd(MLP_LOSS, snr_db=10.0, **steps),
      "mi_fgsm": lambda: attacks.mi_fgsm(MLP_LOSS, **steps),
  }[name.removesuffix("_l2")]
  return batched(make())


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
    (lambda: attacks.deepfool(linear_logits, num_candidates=1), "num_candidates"),
    (lambda: attacks.deepfool(linear_logits, overshoot=-0.1), "overshoot"),
    (lambda: attacks.deepfool(linear_logits, max_iter=0), "max_iter"),
    (lambda: attacks.deepfool(linear_logits, bounds=(1.0, 0.0)), "bounds"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, confidence=-1.0), "confidence"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, learning_rate=0.0), "learning_rate"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, binary_search_steps=0),
     "binary_search_steps"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, initial_const=-1.0), "initial_const"),
    (lambda: attacks.lbfgs(linear_logits, num_steps=0), "num_steps"),
    (lambda: attacks.lbfgs(linear_logits, memory_size=0), "memory_size"),
    (lambda: attacks.lbfgs(linear_logits, bounds=(2.0, 1.0)), "bounds"),
    (lambda: attacks.iterative(LINEAR_LOSS, init=attacks.init_zeros(),
                               step=optax.scale_by_sign(),
                               project=attacks.project_linf(0.1), num_steps=1.5), "num_steps"),
    (lambda: attacks.project_l2(-1.0), "eps"),
])
def test_factories_reject_invalid_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


@pytest.mark.parametrize("name", ["fgsm", "bim_l2", "pgd", "pgd_l2", "mi_fgsm", "pgd_snr"])
@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**16))
def test_perturbation_stays_in_ball_and_input_in_bounds(name, seed):
  x, y, keys = batch(seed, scale=BOUNDS[1])
  x_adv = budgeted(name)(mlp_params(seed % 3), x, y, keys)
  size = perturbation.l2 if name.endswith("_l2") else perturbation.linf
  assert np.all(np.isfinite(x_adv))
  assert np.all(sizes(size, x, x_adv) <= EPS * (1 + 1e-5))
  assert np.all((x_adv >= BOUNDS[0]) & (x_adv <= BOUNDS[1]))
  if name == "pgd_snr":
    assert np.all(sizes(perturbation.snr_db, x, x_adv) >= 10.0 - 1e-3)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_equals_one_bim_step_of_size_eps(norm):
  x, y, keys = batch(1)
  fgsm = batched(attacks.fgsm(MLP_LOSS, eps=EPS, norm=norm, bounds=BOUNDS))
  bim = batched(attacks.bim(MLP_LOSS, eps=EPS, step_size=EPS, num_steps=1, norm=norm,
                            bounds=BOUNDS))
  np.testing.assert_array_equal(fgsm(mlp_params(), x, y, keys), bim(mlp_params(), x, y, keys))


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


def test_best_of_keeps_the_restart_of_highest_loss():
  params, (x, y, keys) = mlp_params(), batch(4)
  noise = lambda p, x, y, key: x + jax.random.normal(key, x.shape)
  best = batched(attacks.best_of(noise, MLP_LOSS, num_restarts=3))(params, x, y, keys)
  restart_keys = jax.vmap(jax.random.split, (0, None))(keys, 3)  # [batch, restart, key]
  one_run = batched(noise)
  candidates = jnp.stack([one_run(params, x, y, restart_keys[:, r]) for r in range(3)])
  losses = jnp.stack([batch_loss(MLP_LOSS, params, c, y) for c in candidates])
  expected = candidates[jnp.argmax(losses, axis=0), jnp.arange(BATCH)]
  np.testing.assert_array_equal(best, expected)


def test_targeted_pgd_reaches_the_target():
  params, (x, y, keys) = linear_params(), batch(5, size=8)
  target = (y + 1) % CLASSES
  attack = batched(attacks.pgd(attacks.targeted(LINEAR_LOSS), eps=2.0, step_size=0.2,
                               num_steps=20))
  x_adv = attack(params, x, target, keys)
  np.testing.assert_array_equal(predict(linear_logits, params, x_adv), target)


@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**16), snr=st.floats(-10.0, 60.0),
                  noise_scale=st.floats(1e-4, 1e2))
def test_snr_projections_meet_their_budget(seed, snr, noise_scale):
  kx, kd = jax.random.split(jax.random.PRNGKey(seed))
  x = jax.random.normal(kx, (64,))
  delta = noise_scale * jax.random.normal(kd, (64,))
  floor = attacks.project_snr(snr)(delta, x)
  assert perturbation.snr_db(x, x + floor) >= snr - 1e-3
  if perturbation.snr_db(x, x + delta) >= snr:  # already within budget: untouched
    np.testing.assert_array_equal(floor, delta)
  sphere = attacks.project_snr_sphere(snr)(delta, x)
  np.testing.assert_allclose(perturbation.snr_db(x, x + sphere), snr, atol=1e-3)


def test_snr_parts_keep_silence_silent_without_nan():
  silent = jnp.zeros(8)
  for part in (attacks.project_snr(20.0), attacks.project_snr_sphere(20.0)):
    np.testing.assert_array_equal(part(jnp.ones(8), silent), silent)
  np.testing.assert_array_equal(attacks.white_noise(snr_db=20.0)(None, silent, 0,
                                                                 jax.random.PRNGKey(0)), silent)


def test_fgsm_snr_and_white_noise_hit_the_snr_exactly():
  params, (x, y, keys) = mlp_params(), batch(6)
  for attack in (FGSM_20DB, batched(attacks.white_noise(snr_db=20.0))):
    x_adv = attack(params, x, y, keys)
    np.testing.assert_allclose(sizes(perturbation.snr_db, x, x_adv), 20.0, atol=1e-3)
  # The paper's FGSM moves every sample by the same amount, along the gradient's sign.
  x_adv = FGSM_20DB(params, x, y, keys)
  grads = jax.vmap(jax.grad(MLP_LOSS, argnums=1), (None, 0, 0))(params, x, y)
  np.testing.assert_array_equal(jnp.sign(x_adv - x), jnp.sign(grads))
  clipped = batched(attacks.fgsm_snr(MLP_LOSS, snr_db=-10.0, bounds=BOUNDS))(params, x, y, keys)
  assert np.all(sizes(perturbation.snr_db, x, clipped) >= -10.0 - 1e-3)
  assert np.all((clipped >= BOUNDS[0]) & (clipped <= BOUNDS[1]))


@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**16), eps=st.floats(0.0, 10.0))
def test_uniform_inits_lie_in_their_ball(seed, eps):
  x, key = jnp.zeros(16), jax.random.PRNGKey(seed)
  assert perturbation.linf(x, attacks.init_uniform_linf(eps)(x, key)) <= eps
  assert perturbation.l2(x, attacks.init_uniform_l2(eps)(x, key)) <= eps * (1 + 1e-5)


def test_normalizers_are_unit_and_keep_zero_gradients_zero():
  g = jnp.array([3.0, -4.0, 0.0])
  for part, size in ((attacks.normalize_l1(), 7.0), (attacks.normalize_l2(), 5.0)):
    np.testing.assert_allclose(part.update(g, part.init(g))[0], g / size, rtol=1e-6)
    np.testing.assert_array_equal(part.update(jnp.zeros(3), part.init(g))[0], jnp.zeros(3))
  tiny = jnp.array([1e-30, 0.0])  # squares underflow in float32; the norm must not
  np.testing.assert_allclose(attacks.normalize_l2().update(tiny, ())[0], jnp.array([1.0, 0.0]))


def test_zero_gradient_gives_finite_unchanged_input():
  zero = jax.tree.map(jnp.zeros_like, mlp_params())
  x, y, keys = batch(7)
  for name in ("fgsm", "bim_l2", "mi_fgsm"):
    np.testing.assert_array_equal(budgeted(name)(zero, x, y, keys), x)
  x_adv = budgeted("pgd_l2")(zero, x, y, keys)  # moved only by the random start
  assert np.all(np.isfinite(x_adv))
  np.testing.assert_array_equal(FGSM_20DB(zero, x, y, keys), x)


@pytest.mark.parametrize("name", ["fgsm", "bim_l2", "pgd", "mi_fgsm"])
def test_traces_once_per_shape_and_same_key_gives_same_result(name):
  attack = budgeted(name)
  (x, y, keys), (x2, y2, keys2) = batch(8), batch(9)
  first = attack(mlp_params(), x, y, keys)
  attack(mlp_params(1), x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(mlp_params(), x, y, keys), first)
  if name == "pgd":  # the only random one
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
  assert np.all(sizes(perturbation.linf, x, x_adv) <= 0.01 * (1 + 1e-5))
  assert np.all(sizes(perturbation.snr_db, x, x_adv) >= 20.0 - 1e-3)
  assert np.all(batch_loss(loss_fn, params, x_adv, y) > batch_loss(loss_fn, params, x, y))
