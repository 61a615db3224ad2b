"""TFDS builders, one per dataset; `BUILDERS` maps the names configs use to builder classes."""

from soundjax.data.builders.avp_lvt import AvpLvt, avp_lvt_config
from soundjax.data.builders.digits import Digits, digits_config
from soundjax.data.builders.fsd_kaggle2018 import FsdKaggle2018, fsd_kaggle2018_config
from soundjax.data.builders.jamendo import Jamendo, jamendo_config
from soundjax.data.builders.synth_events import SynthEvents, synth_events_config
from soundjax.data.builders.synth_soundscapes import SynthSoundscapes, synth_soundscapes_config
from soundjax.data.builders.synth_vocal_percussion import (
    SynthVocalPercussion,
    synth_vocal_percussion_config,
)
from soundjax.data.builders.urban_sed import UrbanSed, urban_sed_config

# name -> (builder class, factory of its BuilderConfig from keyword settings, or None).
BUILDERS = {
    "synth_events": (SynthEvents, synth_events_config),
    "digits": (Digits, digits_config),
    "fsd_kaggle2018": (FsdKaggle2018, fsd_kaggle2018_config),
    "jamendo": (Jamendo, jamendo_config),
    "synth_soundscapes": (SynthSoundscapes, synth_soundscapes_config),
    "synth_vocal_percussion": (SynthVocalPercussion, synth_vocal_percussion_config),
    "avp_lvt": (AvpLvt, avp_lvt_config),
    "urban_sed": (UrbanSed, urban_sed_config),
}
