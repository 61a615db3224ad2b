"""Tests of the DLR losses against their published formulas, written here in numpy (sorting the
logits with `np.sort`, as the AutoAttack reference sorts them with `torch.sort`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks, losses
from tests.toys import batched, predict

CLASSES = 5


def reference_dlr(z, y):
  z_sorted = np.sort(z, axis=-1)
  rows = np.arange(len(z))
  top_is_y = np.argmax(z, axis=-1) == y
  other = np.where(top_is_y, z_sorted[:, -2], z_sorted[:, -1])
  return -(z[rows, y] - other) / (z_sorted[:, -1] - z_sorted[:, -3] + 1e-12)


def reference_dlr_targeted(z, y, t):
  z_sorted = np.sort(z, axis=-1)
  rows = np.arange(len(z))
  return -(z[rows, y] - z[rows, t]) / (z_sorted[:, -1] - 0.5 * (z_sorted[:, -3] + z_sorted[:, -4])
                                       + 1e-12)


def logits_and_labels(seed, size=16):
  kz, ky, kt = jax.random.split(jax.random.PRNGKey(seed), 3)
  z = 3.0 * jax.random.normal(kz, (size, CLASSES))
  y = jax.random.randint(ky, (size,), 0, CLASSES)
  y = y.at[:4].set(jnp.argmax(z[:4], axis=-1))  # some rows classified correctly
  return z, y, jax.random.randint(kt, (size,), 0, CLASSES)


def test_dlr_matches_its_formula():
  z, y, _ = logits_and_labels(0)
  expected = reference_dlr(np.asarray(z, np.float64), np.asarray(y))
  np.testing.assert_allclose(jax.jit(losses.dlr_on_logits)(z, y), expected, rtol=1e-5,
                             atol=1e-6)
  assert np.all(expected[:4] <= 0) and np.any(expected[4:] > 0)
  # Per example, through a logits function (the `LossFn` every attack takes).
  loss_fn = losses.dlr_loss(lambda params, x: x * params)
  per_example = jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0)))(2.0, z / 2.0, y)
  np.testing.assert_allclose(per_example, expected, rtol=1e-5, atol=1e-6)


def test_targeted_dlr_matches_its_formula():
  z, y, t = logits_and_labels(1)
  expected = reference_dlr_targeted(*(np.asarray(a) for a in (np.asarray(z, np.float64), y, t)))
  np.testing.assert_allclose(losses.dlr_targeted_on_logits(z, y, t), expected, rtol=1e-5,
                             atol=1e-6)
  loss_fn = losses.dlr_targeted_loss(lambda params, x: x)
  pairs = jnp.stack([y, t], axis=-1)
  np.testing.assert_allclose(jax.vmap(loss_fn, in_axes=(None, 0, 0))(None, z, pairs), expected,
                             rtol=1e-5, atol=1e-6)


def test_label_checks():
  z, y, t = logits_and_labels(2, size=3)
  with pytest.raises(TypeError, match="integer"):
    losses.dlr_on_logits(z, y.astype(jnp.float32))
  with pytest.raises(ValueError, match="shape"):
    losses.dlr_on_logits(z, y[:2])
  with pytest.raises(ValueError, match="at least 3 classes"):
    losses.dlr_on_logits(z[:, :2], y % 2)
  with pytest.raises(ValueError, match="at least 4 classes"):
    losses.dlr_targeted_on_logits(z[:, :3], y % 3, t % 3)
  with pytest.raises(TypeError, match="target"):
    losses.dlr_targeted_on_logits(z, y, t.astype(jnp.float32))
  # A label outside the classes gives NaN, never another class's loss.
  assert np.isnan(losses.dlr_on_logits(z, y.at[0].set(CLASSES))[0])
  assert np.isnan(losses.dlr_targeted_on_logits(z, y, t.at[1].set(-1))[1])
  per_example = losses.dlr_loss(lambda params, x: x)
  with pytest.raises(ValueError, match="one integer class index per example"):
    per_example(None, z[0], y[:2])
  pairwise = losses.dlr_targeted_loss(lambda params, x: x)
  with pytest.raises(ValueError, match=r"\[label, target\]"):
    pairwise(None, z[0], y[0])
  with pytest.raises(TypeError, match="integer"):
    pairwise(None, z[0], jnp.zeros(2))


def test_targeted_dlr_drives_apgd_past_the_true_class():
  # A linear model of 5 classes: APGD-T, ascending the targeted DLR loss, lifts the target's
  # logit above the true class's (AutoAttack counts any misclassification as success).
  kw, kx, kk = jax.random.split(jax.random.PRNGKey(3), 3)
  w = jax.random.normal(kw, (6, CLASSES))
  logits_fn = lambda params, x: x @ params
  x = jax.random.uniform(kx, (4, 6), minval=-0.5, maxval=0.5)
  y = predict(logits_fn, w, x)
  target = (y + 2) % CLASSES
  attack = batched(attacks.apgd(losses.dlr_targeted_loss(logits_fn), eps=2.0, num_steps=20,
                                unroll=False))
  x_adv = attack(w, x, jnp.stack([y, target], axis=-1), jax.random.split(kk, 4))
  z = x_adv @ w
  rows = np.arange(len(x))
  assert np.all(z[rows, target] > z[rows, y]) and np.all(predict(logits_fn, w, x_adv) != y)
