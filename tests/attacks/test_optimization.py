"""Tests of DeepFool, Carlini & Wagner L2 and L-BFGS on closed-form toy models.

On a linear classifier `z = x W + b` the smallest L2 change that alters the prediction k0 is known:
`min_k (z_k0 - z_k) / ||W_k - W_k0||`, reached along `W_k - W_k0`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks
from soundjax.metrics import perturbation
from tests.toys import (
  CLASSES,
  LINEAR_LOSS,
  batch,
  batched,
  linear_logits,
  linear_params,
  mlp_logits,
  mlp_params,
  predict,
  sizes,
)

SIZE = 8  # examples per batch in this file; every compiled attack sees this one shape


@jax.jit
@functools.partial(jax.vmap, in_axes=(None, 0))
def boundary_distances(params, x):
  """Per example: the distance to the nearest decision boundary and the unit direction to it."""
  z = linear_logits(params, x)
  k0 = jnp.argmax(z)
  w_diff = params["w"].T - params["w"].T[k0][None]  # [class, dim]: normals of z_k - z_k0
  norm = jnp.linalg.norm(w_diff, axis=-1)
  dist = jnp.where(norm > 0, (z[k0] - z) / jnp.where(norm > 0, norm, 1), jnp.inf)
  nearest = jnp.argmin(dist)
  return dist[nearest], w_diff[nearest] / norm[nearest]


@functools.cache
def compiled(name):
  """Attacks used by several tests, compiled once for the shape of `batch(seed, size=SIZE)`."""
  return batched({
      "deepfool_one_step": lambda: attacks.deepfool(linear_logits, num_candidates=CLASSES,
                                                    overshoot=0.5, max_iter=1),
      "deepfool_mlp": lambda: attacks.deepfool(mlp_logits, num_candidates=2, bounds=(-1.0, 1.0)),
      # Adam's step sets C&W's resolution: 0.01 resolves boundaries ~1e-3 away (0.05 did not).
      "cw": lambda: attacks.carlini_wagner_l2(linear_logits, learning_rate=0.01, num_steps=300,
                                              binary_search_steps=4, initial_const=1.0),
      "cw_targeted": lambda: attacks.carlini_wagner_l2(
          mlp_logits, confidence=1.0, learning_rate=0.05, num_steps=100, binary_search_steps=3,
          initial_const=1.0, bounds=(-1.0, 1.0), targeted=True),
      "lbfgs": lambda: attacks.lbfgs(mlp_logits, initial_const=1.0, num_steps=10,
                                     binary_search_steps=3, bounds=(-1.0, 1.0)),
  }[name]())


@pytest.mark.parametrize("make, match", [
    (lambda: attacks.deepfool(linear_logits, num_candidates=1), "num_candidates"),
    (lambda: attacks.deepfool(linear_logits, overshoot=-0.1), "overshoot"),
    (lambda: attacks.deepfool(linear_logits, max_iter=0), "max_iter"),
    (lambda: attacks.deepfool(linear_logits, bounds=(1.0, 0.0)), "bounds"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, confidence=-1.0), "confidence"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, learning_rate=0.0), "learning_rate"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, binary_search_steps=0),
     "binary_search_steps"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, initial_const=-1.0), "initial_const"),
    (lambda: attacks.carlini_wagner_l2(linear_logits, bounds=(0.0, 0.0)), "bounds"),
    (lambda: attacks.lbfgs(linear_logits, num_steps=0), "num_steps"),
    (lambda: attacks.lbfgs(linear_logits, memory_size=0), "memory_size"),
    (lambda: attacks.lbfgs(linear_logits, bounds=(2.0, 1.0)), "bounds"),
    (lambda: attacks.tanh_box((1.0, -1.0)), "bounds"),
])
def test_factories_reject_invalid_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_deepfool_reaches_a_linear_boundary_in_one_step():
  params, (x, y, keys) = linear_params(), batch(0, size=SIZE)
  x_adv = compiled("deepfool_one_step")(params, x, y, keys)
  dist, unit = boundary_distances(params, x)
  # One step of (distance + the original's 1e-4 slack) along the normal, times 1 + overshoot.
  np.testing.assert_allclose(x_adv - x, 1.5 * (dist + 1e-4)[:, None] * unit, rtol=1e-4,
                             atol=1e-6)
  assert np.all(predict(linear_logits, params, x_adv) != predict(linear_logits, params, x))


def test_deepfool_without_overshoot_stops_on_the_boundary():
  params, (x, y, keys) = linear_params(1), batch(1, size=SIZE)
  attack = batched(attacks.deepfool(linear_logits, num_candidates=CLASSES, overshoot=0.0))
  x_adv = attack(params, x, y, keys)
  top2 = jax.lax.top_k(jax.vmap(linear_logits, (None, 0))(params, x_adv), 2)[0]
  np.testing.assert_allclose(top2[:, 0], top2[:, 1], atol=1e-3)


def test_deepfool_fools_an_mlp_within_bounds():
  params, (x, y, keys) = mlp_params(), batch(2, size=SIZE)
  x_adv = compiled("deepfool_mlp")(params, x, y, keys)
  assert np.all(np.isfinite(x_adv)) and np.all(np.abs(x_adv) <= 1.0)
  assert np.all(predict(mlp_logits, params, x_adv) != predict(mlp_logits, params, x))


def test_carlini_wagner_beats_pgd_l2_at_equal_success():
  params, (x, _, keys) = linear_params(), batch(3, size=SIZE)
  y = predict(linear_logits, params, x)
  dist, _ = boundary_distances(params, x)
  eps = 1.5 * float(jnp.max(dist))
  pgd = batched(attacks.pgd(LINEAR_LOSS, eps=eps, step_size=eps / 4, num_steps=10, norm="l2"))
  x_pgd = pgd(params, x, y, keys)
  x_cw = compiled("cw")(params, x, y, keys)
  for x_adv in (x_pgd, x_cw):
    assert np.all(predict(linear_logits, params, x_adv) != y)
  l2_cw, l2_pgd = sizes(perturbation.l2, x, x_cw), sizes(perturbation.l2, x, x_pgd)
  assert np.all(l2_cw >= dist * (1 - 1e-3))  # nobody beats the closed-form optimum
  # C&W descends to *a* boundary; with several classes it may not be the nearest one.
  assert np.median(l2_cw / dist) <= 1.1
  assert np.mean(l2_cw) < np.mean(l2_pgd)


def test_targeted_carlini_wagner_reaches_the_target_with_confidence():
  params, (x, _, keys) = mlp_params(), batch(4, size=SIZE)
  target = (predict(mlp_logits, params, x) + 1) % CLASSES
  x_adv = compiled("cw_targeted")(params, x, target, keys)
  z = jax.vmap(mlp_logits, (None, 0))(params, x_adv)
  np.testing.assert_array_equal(jnp.argmax(z, axis=-1), target)
  assert np.all(np.abs(x_adv) <= 1.0)
  margin = jax.vmap(lambda z, t: attacks.margin(z, t, confidence=1.0, targeted=True))(z, target)
  assert np.all(margin < 0)  # the target wins by at least the confidence


def test_lbfgs_reaches_the_target_within_bounds():
  params, (x, _, keys) = mlp_params(), batch(5, size=SIZE)
  target = (predict(mlp_logits, params, x) + 1) % CLASSES
  x_adv = compiled("lbfgs")(params, x, target, keys)
  assert np.all(np.abs(x_adv) <= 1.0)
  np.testing.assert_array_equal(predict(mlp_logits, params, x_adv), target)


@pytest.mark.parametrize("name", ["deepfool_mlp", "cw_targeted", "lbfgs"])
def test_zero_gradients_give_finite_results(name):
  zero = jax.tree.map(jnp.zeros_like, mlp_params())
  x, y, keys = batch(6, size=SIZE)
  x_adv = compiled(name)(zero, x, y, keys)
  assert np.all(np.isfinite(x_adv))
  if name == "cw_targeted":  # equal logits never clear the confidence: the clean input returns
    np.testing.assert_array_equal(x_adv, x)
  np.testing.assert_allclose(x_adv, x, atol=1e-6)  # nothing to follow (tanh box rounding aside)


@pytest.mark.parametrize("name", ["deepfool_one_step", "cw", "lbfgs"])
def test_traces_once_per_shape_and_is_deterministic(name):
  attack = compiled(name)
  (x, y, keys), (x2, y2, keys2) = batch(7, size=SIZE), batch(8, size=SIZE)
  params = mlp_params() if name == "lbfgs" else linear_params()
  first = attack(params, x, y, keys)
  attack(params, x2, y2, keys2)
  assert attack.traces == 1
  np.testing.assert_array_equal(attack(params, x, y, keys), first)

