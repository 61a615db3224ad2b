"""Tests of the perturbation sizes and the float-tolerant budget checks, on hand-computed cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax.metrics import perturbation

F32 = np.float32


def test_sizes_of_a_hand_computed_perturbation():
  x = jnp.array([1.0, -1.0, 1.0, -1.0])  # power 1
  x_adv = x + jnp.array([0.3, -0.4, 0.0, 0.0])  # L2 0.5, power 0.25 / 4
  assert float(perturbation.linf(x, x_adv)) == pytest.approx(0.4)
  assert float(perturbation.l2(x, x_adv)) == pytest.approx(0.5)
  assert float(perturbation.snr_db(x, x_adv)) == pytest.approx(10 * np.log10(16), rel=1e-6)


def test_linf_check_forgives_float_rounding_of_x_plus_delta():
  # An exact eps step: 0.3 + 0.002 rounds in float32, and the change measures 0.002 + 4e-9.
  x, eps = jnp.array([F32(0.3), F32(-0.1)]), F32(0.002)
  x_adv = x + jnp.array([eps, -eps])
  excess = float(perturbation.linf(x, x_adv)) - float(eps)
  assert 3e-9 < excess < 5e-9  # the user's plain `abs(x_adv - x) <= eps` fails here
  assert not np.all(np.abs(x_adv - x) <= eps)
  assert perturbation.within_linf(x, x_adv, eps)
  assert not perturbation.within_linf(x, x_adv, eps, rtol=0.0, atol=0.0)


def test_linf_check_catches_genuine_violations():
  x = jnp.array([F32(0.3), F32(-0.1)])
  for change in (0.0021, 0.002 * (1 + 1e-4)):
    assert not perturbation.within_linf(x, x + jnp.array([0.0, change]), 0.002)
  assert perturbation.within_linf(x, x + jnp.array([0.0, 0.0021]), 0.002, atol=2e-4)
  assert perturbation.within_linf(x, x, 0.0)


def test_rounding_slack_scales_with_the_signal():
  # Log-mel inputs in dB sit on a float grid ~250x coarser than audio near 0.3: a step of 0.05
  # at 73.3 dB rounds up by 3e-6, 60 ppm of the budget, beyond `rtol` alone.
  x, eps = jnp.array([F32(73.3)]), F32(0.05)
  x_adv = x + eps
  assert float(perturbation.linf(x, x_adv)) - float(eps) > 2e-6
  assert perturbation.within_linf(x, x_adv, eps)
  assert not perturbation.within_linf(x, x_adv, eps, atol=0.0)
  assert not perturbation.within_linf(x, x + F32(0.0501), eps)


def test_l2_check():
  x = jnp.full(4, F32(0.3))
  x_adv = x + jnp.array([0.06, 0.08, 0.0, 0.0])  # L2 exactly 0.1 before rounding
  assert perturbation.within_l2(x, x_adv, 0.1)
  assert not perturbation.within_l2(x, x_adv, 0.0999)
  assert perturbation.within_l2(x, x_adv, 0.0999, atol=2e-4)
  assert not perturbation.within_l2(x, x + jnp.array([0.06, 0.08, 0.001, 0.0]), 0.1)


def test_snr_check():
  x = jnp.array([1.0, -1.0, 1.0, -1.0])  # power 1
  x_adv = x + 0.1  # noise power 0.01: 20 dB exactly before rounding
  assert perturbation.above_snr(x, x_adv, 20.0)
  assert perturbation.above_snr(x, x_adv, 20.0 + 5e-5)  # within the default 1e-4 dB
  assert not perturbation.above_snr(x, x_adv, 20.01)
  assert perturbation.above_snr(x, x_adv, 20.01, tol_db=0.02)
  assert not perturbation.above_snr(x, x + 0.1001, 20.0)
  silent = jnp.zeros(4)
  assert perturbation.above_snr(silent, silent, 20.0)
  assert not perturbation.above_snr(silent, silent + 1e-3, 20.0)  # silence admits no change


def test_checks_are_per_example_and_take_a_traced_budget():
  x = jnp.array([[0.3, 0.3], [0.3, 0.3]])
  x_adv = x + jnp.array([[0.002, 0.0], [0.0021, 0.0]])
  for check in (perturbation.within_linf, perturbation.within_l2):
    ok = jax.jit(jax.vmap(check, in_axes=(0, 0, None)))(x, x_adv, 0.002)
    np.testing.assert_array_equal(ok, [True, False])
  snr = jax.jit(jax.vmap(perturbation.above_snr, in_axes=(0, 0, None)))
  np.testing.assert_array_equal(snr(x, x_adv, 20 * np.log10(0.3 / (0.002 / np.sqrt(2)))),
                                [True, False])
