"""Test-wide settings: strict JAX promotion so silent broadcasting or dtype drift fails loudly."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
