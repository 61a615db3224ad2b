"""Experiments: each module exposes `run(config, workdir)` and writes its results into `workdir`."""
