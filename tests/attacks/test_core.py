"""Tests of the attack parts: the loop and its compile policy, inits, normalisers, projections.

The toys (a linear classifier and a one-hidden-layer MLP with plain jnp parameters) live in
`tests/toys.py`.
"""

import hypothesis
import hypothesis.strategies as st
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from soundjax import attacks
from soundjax.metrics import perturbation
from tests.toys import BATCH, LINEAR_LOSS, MLP_LOSS, batch, batch_loss, batched, mlp_params

SETTINGS = hypothesis.settings(max_examples=10, deadline=None)
LOOPS = ("while", "scan")  # `lax.fori_loop` with static bounds traces as a scan


@pytest.mark.parametrize("make, match", [
    (lambda: attacks.iterative(LINEAR_LOSS, init=attacks.init_zeros(),
                               step=optax.scale_by_sign(),
                               project=attacks.project_linf(0.1), num_steps=1.5), "num_steps"),
    (lambda: attacks.project_l2(-1.0), "eps"),
    (lambda: attacks.project_bounds(1.0, 1.0), "bounds"),
    (lambda: attacks.with_bounds(attacks.project_linf(0.1), (0.5, -0.5)), "bounds"),
    (lambda: attacks.budget("l1", 0.1), "norm"),
    (lambda: attacks.best_of(lambda *a: a[1], LINEAR_LOSS, num_restarts=0), "num_restarts"),
])
def test_parts_reject_invalid_arguments(make, match):
  with pytest.raises(ValueError, match=match):
    make()


# --- the compile policy of `iterative` ---

def _primitives(jaxpr):
  """Names of every primitive in `jaxpr`, inner jaxprs (jit, loop bodies) included."""
  for eqn in jaxpr.eqns:
    yield eqn.primitive.name
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _primitives(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _primitives(sub)


def _pgd(num_steps, unroll=None):
  return attacks.iterative(MLP_LOSS, init=attacks.init_uniform_linf(0.1),
                           step=optax.chain(optax.scale_by_sign(), optax.scale(0.03)),
                           project=attacks.budget("linf", 0.1, (-0.5, 0.5)),
                           num_steps=num_steps, unroll=unroll)


def _loops(attack):
  x, y, keys = batch(0)
  jaxpr = jax.make_jaxpr(attack)(mlp_params(), x[0], y[0], keys[0])
  return any(name in LOOPS for name in _primitives(jaxpr.jaxpr))


def test_default_traces_straight_on_cpu_and_loops_elsewhere(monkeypatch):
  assert jax.default_backend() == "cpu"  # these tests run on XLA:CPU
  assert not _loops(_pgd(4))
  assert not _loops(_pgd(attacks.core.MAX_UNROLLED_STEPS))
  assert _loops(_pgd(attacks.core.MAX_UNROLLED_STEPS + 1))  # compile time grows with steps
  assert _loops(_pgd(4, unroll=False)) and not _loops(_pgd(4, unroll=True))
  # Decided when traced, not when built: the same attack loops once the backend is a GPU.
  attack = _pgd(4)
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert _loops(attack) and not _loops(_pgd(4, unroll=True))


@pytest.mark.parametrize("num_steps", [1, 5])
def test_straight_and_looped_forms_agree(num_steps):
  params, (x, y, keys) = mlp_params(), batch(1)
  straight, looped = (batched(_pgd(num_steps, unroll)) for unroll in (True, False))
  x_straight, x_looped = straight(params, x, y, keys), looped(params, x, y, keys)
  assert np.any(np.abs(x_straight - x) > 0.05)  # the steps moved it
  np.testing.assert_allclose(x_straight, x_looped, rtol=0, atol=1e-6)


# --- projections ---

def test_box_projection_only_moves_samples_towards_the_box():
  # Hand-computed, box (-1, 1): in-box samples are clipped to it; a sample outside moves towards
  # it (and may cross into it) but never further out, and is never pulled in.
  x = jnp.array([0.5, 0.5, 1.5, 1.5, 1.5, -1.5, -1.5])
  delta = jnp.array([0.7, -0.2, 0.1, -0.2, -3.0, -0.1, 0.3])
  want = jnp.array([0.5, -0.2, 0.0, -0.2, -2.5, 0.0, 0.3])
  np.testing.assert_allclose(attacks.project_bounds(-1.0, 1.0)(delta, x), want, atol=1e-7)


def test_box_after_a_budget_keeps_the_budget_for_out_of_box_inputs():
  x = jnp.array([1.5, -1.5, 1.2, 0.3, 0.99, -0.2])
  delta = jnp.array([0.01, 0.01, 0.01, -0.01, 0.01, 0.01])
  for norm, size in (("linf", perturbation.linf), ("l2", perturbation.l2)):
    projected = jax.jit(attacks.budget(norm, 0.005, (-1.0, 1.0)))(delta, x)
    assert size(x, x + projected) <= 0.005 * (1 + 1e-6)
  projected = jax.jit(attacks.budget("linf", 1.0, (-1.0, 1.0), snr_db=40.0))(delta, x)
  assert perturbation.snr_db(x, x + projected) >= 40.0 - 1e-4


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


# --- inits, normalisers, restarts ---

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
