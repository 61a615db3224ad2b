"""Sizes of a perturbation `x_adv - x`, and checks that it meets a budget up to float rounding,
per example (callers vmap over batches).
"""

import math
from typing import Optional

import jax
import jax.numpy as jnp

# Power floor so that SNR of an all-zero signal or perturbation stays finite.
_POWER_FLOOR = 1e-20


def _norm(v: jax.Array) -> jax.Array:
  """Euclidean norm that neither underflows nor overflows: scale by max |v| first."""
  peak = jnp.max(jnp.abs(v))
  scaled = v / jnp.where(peak > 0, peak, 1)
  return peak * jnp.sqrt(jnp.sum(jnp.square(scaled)))


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


# --- budget checks with a float tolerance ---

# Relative slack on the budget: the projections' own float32 arithmetic (a norm, a ratio, a
# scaling) is exact to a few 1e-7; 1e-5 leaves room for sums over long clips.
RTOL = 1e-5
# Absolute slack, in float steps of the signal: `x + delta` rounds each element to the grid of
# `x_adv`, by up to half a step (`finfo.eps * |x_adv|` / 2), and measuring `x_adv - x` rounds
# again; two steps of the larger of |x| and |x_adv| bound both.
ULPS = 2.0


def _grid(x: jax.Array, x_adv: jax.Array) -> jax.Array:
  """Per element, `ULPS` float steps of the larger magnitude: the rounding `x + delta` may add."""
  dtype = jnp.result_type(x, x_adv)
  dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
  return ULPS * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(x), jnp.abs(x_adv))


def within_linf(x: jax.Array, x_adv: jax.Array, eps: float, *, rtol: float = RTOL,
                atol: Optional[float] = None) -> jax.Array:
  """Whether `max |x_adv - x| <= eps`, up to float rounding.

  A plain `abs(x_adv - x) <= eps` fails on exact attacks: `x + delta` rounds to the float grid
  of `x_adv`, e.g. by 4e-9 at |x| = 0.3 in float32. The tolerance is `rtol * eps` plus, by
  default, per element `ULPS` float steps of `max(|x|, |x_adv|)` (scale-free: log-mel inputs in
  dB round 100x coarser than audio); a genuine violation is far larger.

  Args:
    x: the clean input (one example).
    x_adv: the perturbed input, same shape.
    eps: the Linf budget, >= 0 (may be traced).
    rtol: slack relative to `eps`, default 1e-5.
    atol: absolute slack per element instead of the float-grid default.

  Returns:
    A boolean scalar; `jax.vmap` over examples.

  Example:
    >>> ok = jax.vmap(within_linf, in_axes=(0, 0, None))(x, x_adv, 0.002)
  """
  slack = _grid(x, x_adv) if atol is None else atol
  return jnp.all(jnp.abs(x_adv - x) <= eps * (1 + rtol) + slack)


def within_l2(x: jax.Array, x_adv: jax.Array, eps: float, *, rtol: float = RTOL,
              atol: Optional[float] = None) -> jax.Array:
  """Whether `||x_adv - x||_2 <= eps`, up to float rounding.

  The default absolute slack is the L2 norm of the per-element rounding bound of `within_linf`
  (the rounding errors add up as a vector); `rtol` is relative to `eps` as there.

  Args:
    x: the clean input (one example).
    x_adv: the perturbed input, same shape.
    eps: the L2 budget, >= 0 (may be traced).
    rtol: slack relative to `eps`, default 1e-5.
    atol: absolute slack on the norm instead of the float-grid default.

  Returns:
    A boolean scalar; `jax.vmap` over examples.

  Example:
    >>> ok = jax.vmap(within_l2, in_axes=(0, 0, None))(x, x_adv, 0.5)
  """
  slack = _norm(_grid(x, x_adv)) if atol is None else atol
  return _norm(x_adv - x) <= eps * (1 + rtol) + slack


def above_snr(x: jax.Array, x_adv: jax.Array, snr_db: float, *, tol_db: float = 1e-4,
              atol: Optional[float] = None) -> jax.Array:
  """Whether the perturbation's SNR is at least `snr_db`, up to float rounding.

  Compares amplitudes: `rms(x_adv - x) <= rms(x) * 10^(-(snr_db - tol_db) / 20) + slack`, where
  the slack is by default the RMS of the per-element rounding bound of `within_linf`. The
  default `tol_db` of 1e-4 dB is a relative amplitude slack of about 1.2e-5. A silent `x` admits
  only a perturbation within the rounding slack.

  Args:
    x: the clean input (one example).
    x_adv: the perturbed input, same shape.
    snr_db: the SNR floor in dB (may be traced).
    tol_db: slack on the floor in dB, default 1e-4.
    atol: absolute slack on the perturbation's RMS instead of the float-grid default.

  Returns:
    A boolean scalar; `jax.vmap` over examples.

  Example:
    >>> ok = jax.vmap(above_snr, in_axes=(0, 0, None))(x, x_adv, 20.0)
  """
  rms = lambda v: _norm(v) / math.sqrt(v.size)
  slack = rms(_grid(x, x_adv)) if atol is None else atol
  return rms(x_adv - x) <= rms(x) * 10.0 ** (-(snr_db - tol_db) / 20.0) + slack
