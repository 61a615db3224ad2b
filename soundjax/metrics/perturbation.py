"""Sizes of a perturbation `x_adv - x`, per example (callers vmap over batches)."""

import jax
import jax.numpy as jnp

# Power floor so that SNR of an all-zero signal or perturbation stays finite.
_POWER_FLOOR = 1e-20


def linf(x: jax.Array, x_adv: jax.Array) -> jax.Array:
  """Largest absolute change of any element."""
  return jnp.max(jnp.abs(x_adv - x))


def l2(x: jax.Array, x_adv: jax.Array) -> jax.Array:
  """Euclidean norm of the change."""
  return jnp.sqrt(jnp.sum(jnp.square(x_adv - x)))


def snr_db(x: jax.Array, x_adv: jax.Array) -> jax.Array:
  """Signal-to-noise ratio of the perturbation in dB: `10 log10(mean(x^2) / mean((x_adv - x)^2))`.

  This is the paper's measure ("Adversarial attacks in sound event classification"); an unchanged
  input scores a very large finite value rather than infinity.
  """
  signal = jnp.mean(jnp.square(x))
  noise = jnp.mean(jnp.square(x_adv - x))
  return 10.0 * (jnp.log10(jnp.maximum(signal, _POWER_FLOOR))
                 - jnp.log10(jnp.maximum(noise, _POWER_FLOOR)))
