"""Offline generators of synthetic datasets, one module per dataset (deterministic per seed)."""
