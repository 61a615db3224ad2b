"""The README's first command: the `:quick` variant of each experiment on built-in synthetic data.

  soundjax --config=configs/quickstart.py --workdir=runs/quickstart
  soundjax --config=configs/quickstart.py --workdir=runs/qs --config.stages='("classification",)'

Stages write into `<workdir>/<stage>/`; `<workdir>/summary.md` links their summaries.
"""

import ml_collections

from configs import adversarial, classification, occlusion, sed_attention, vocal_percussion

# The `arg`s get_config takes (`soundjax.experiments.load_config` lists them).
VARIANTS = ("",)


def get_config(arg: str = ""):
  del arg  # The quickstart has one size: minutes on two CPU cores.
  config = ml_collections.ConfigDict()
  config.experiment = "quickstart"
  config.stages = ("classification", "adversarial", "occlusion", "sed", "vocal_percussion")
  config.classification = classification.get_config("quick")
  config.adversarial = adversarial.get_config("quick")
  config.occlusion = occlusion.get_config("quick")
  config.sed = sed_attention.get_config("quick")
  config.vocal_percussion = vocal_percussion.get_config("quick")
  return config
