"""Experiments: each module exposes `run(config, workdir)` and writes its results into `workdir`.

`load_config("classification:quick", {"train.num_steps": 10})` builds the config the command line
would, from Python and any working directory; pass it to `soundjax.experiments.<name>.run`.
"""

from soundjax.experiments.loader import config_names, load_config

__all__ = ["config_names", "load_config"]
