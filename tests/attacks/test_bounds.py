"""The threat model holds for any clean input: every attack taking `bounds` meets its budget and
keeps `x_adv` in the box widened to contain `x`, for clips inside the box and clips outside it
(resampled audio overshoots +-1). The budgets are checked with `metrics.perturbation`'s
float-tolerant checks; the box with a margin far below any perturbation.
"""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks
from soundjax.metrics import perturbation
from tests.toys import (
  CLASSES,
  DIM,
  MLP_LOSS,
  batch,
  batched,
  linear_logits,
  linear_params,
  mlp_params,
  predict,
)

BOUNDS = (-1.0, 1.0)
BUDGETS = {"linf": dict(eps=0.05), "l2": dict(eps=0.1, norm="l2"),
           "snr": dict(eps=1.0, snr_db=20.0)}  # the SNR floor binds, not the wide Linf ball
SETTINGS = hypothesis.settings(max_examples=5, deadline=None)
ROUNDING = 1e-6  # box margin: float rounding of x + delta, far below every budget here


def clips(seed, size=4):
  """`size` clips inside the box and `size` with samples beyond it (both signs), labels, keys."""
  x, y, keys = batch(seed, scale=0.95, size=2 * size)
  overshoot = jnp.broadcast_to(jnp.array([1.5, -1.5, 1.2, -1.05, 1.0, 0.0]), (size, DIM))
  x = x.at[size:].set(jnp.where(overshoot != 0, overshoot, x[size:]))
  return x, y, keys


@functools.cache
def attack(name, budget):
  kwargs = dict(BUDGETS[budget], bounds=BOUNDS)
  steps = dict(kwargs, step_size=kwargs["eps"] / 2, num_steps=4)
  return batched({
      "fgsm": lambda: attacks.fgsm(MLP_LOSS, **kwargs),
      "bim": lambda: attacks.bim(MLP_LOSS, **steps),
      "pgd": lambda: attacks.pgd(MLP_LOSS, num_restarts=2, **steps),
      "mi_fgsm": lambda: attacks.mi_fgsm(MLP_LOSS, **steps),
      "fgsm_snr": lambda: attacks.fgsm_snr(MLP_LOSS, snr_db=20.0, bounds=BOUNDS),
      "white_noise": lambda: attacks.white_noise(snr_db=20.0, bounds=BOUNDS),
  }[name]())


@functools.partial(jax.jit, static_argnums=0)
def meets(budget, x, x_adv):
  """Per example, whether `x_adv` meets `budget` (float rounding allowed)."""
  if budget == "snr":
    return jax.vmap(perturbation.above_snr, (0, 0, None))(x, x_adv, 20.0)
  check = perturbation.within_l2 if budget == "l2" else perturbation.within_linf
  return jax.vmap(check, (0, 0, None))(x, x_adv, BUDGETS[budget]["eps"])


def assert_in_widened_box(x, x_adv):
  lo, hi = np.minimum(BOUNDS[0], x), np.maximum(BOUNDS[1], x)
  assert np.all((x_adv >= lo - ROUNDING) & (x_adv <= hi + ROUNDING))


@pytest.mark.parametrize("name, budget", [
    ("fgsm", "linf"), ("fgsm", "l2"), ("fgsm", "snr"), ("bim", "linf"), ("bim", "l2"),
    ("bim", "snr"), ("pgd", "linf"), ("pgd", "l2"), ("pgd", "snr"), ("mi_fgsm", "linf"),
    ("mi_fgsm", "snr"), ("fgsm_snr", "snr"), ("white_noise", "snr")])
@SETTINGS
@hypothesis.given(seed=st.integers(0, 2**16))
def test_budget_holds_inside_and_outside_the_box(name, budget, seed):
  x, y, keys = clips(seed)
  x_adv = attack(name, budget)(mlp_params(seed % 3), x, y, keys)
  assert np.all(np.isfinite(x_adv))
  np.testing.assert_array_equal(meets(budget, x, x_adv), True)
  assert_in_widened_box(x, x_adv)
  assert np.any(x_adv != x)


def test_out_of_box_clip_gets_the_budget_not_the_overshoot():
  # The case: PGD at eps 0.002 on a clip at +-1.5 used to move it by 0.5 into the box.
  x = jnp.array([1.5, -1.5, 1.2, 0.3, 0.99, -0.2])
  pgd = attacks.pgd(MLP_LOSS, eps=0.002, step_size=0.0005, num_steps=10, bounds=BOUNDS)
  x_adv = jax.jit(pgd)(mlp_params(), x, 0, jax.random.PRNGKey(0))
  assert perturbation.within_linf(x, x_adv, 0.002)
  assert float(perturbation.linf(x, x_adv)) < 0.0021
  assert_in_widened_box(x[None], x_adv[None])


# --- the minimal-perturbation attacks ---

# Feature 0 does not enter the linear model's logits, so an attack has no reason to move it: a
# clip whose feature 0 lies outside the box must get the same perturbation as one whose feature 0
# lies inside, with feature 0 left where it was (not pulled into the box).
def _blind_linear_params():
  params = linear_params(2)
  return dict(params, w=params["w"].at[0].set(0.0))


@functools.cache
def minimal(name):
  return batched({
      "deepfool": lambda: attacks.deepfool(linear_logits, num_candidates=CLASSES, max_iter=5,
                                           bounds=BOUNDS),
      "cw": lambda: attacks.carlini_wagner_l2(linear_logits, learning_rate=0.05, num_steps=50,
                                              binary_search_steps=2, initial_const=1.0,
                                              bounds=BOUNDS),
      "lbfgs": lambda: attacks.lbfgs(linear_logits, initial_const=1.0, num_steps=10,
                                     binary_search_steps=2, bounds=BOUNDS),
  }[name]())


@pytest.mark.parametrize("name", ["deepfool", "cw", "lbfgs"])
def test_minimal_attacks_leave_an_out_of_box_sample_they_do_not_need(name):
  params, (x_in, _, keys) = _blind_linear_params(), batch(11, scale=0.5, size=4)
  x_out = x_in.at[:, 0].set(jnp.array([1.5, -1.5, 1.2, -3.0]))
  x, keys = jnp.concatenate([x_in, x_out]), jnp.concatenate([keys, keys])
  clean = predict(linear_logits, params, x)
  y = (clean + 1) % CLASSES if name == "lbfgs" else clean  # L-BFGS is targeted
  x_adv = np.asarray(minimal(name)(params, x, y, keys))
  adv_in, adv_out = x_adv[:4], x_adv[4:]
  assert np.any(np.abs(adv_in - x_in) > 1e-2)  # the attack did move the clips
  np.testing.assert_allclose(adv_out[:, 0], x_out[:, 0], rtol=0, atol=1e-5)
  np.testing.assert_allclose(adv_out[:, 1:], adv_in[:, 1:], rtol=0, atol=1e-5)
  assert_in_widened_box(x, x_adv)
