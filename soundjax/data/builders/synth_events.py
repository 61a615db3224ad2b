"""`synth_events`: single-label synthetic sound event clips, generated offline from a seed."""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data.synthetic import events as synthetic


@dataclasses.dataclass
class SynthEventsConfig(tfds.core.BuilderConfig):
  """Size and sound of the synthetic set; the config name encodes every field, so sets built with
  different settings never share a folder."""
  sample_rate: int = 16000
  clip_seconds: float = 1.0
  num_train: int = 2400
  num_test: int = 600
  seed: int = 0


def synth_events_config(*, sample_rate=16000, clip_seconds=1.0, num_train=2400, num_test=600,
                        seed=0) -> SynthEventsConfig:
  """Returns a validated config named after its settings."""
  for field, value in (("sample_rate", sample_rate), ("clip_seconds", clip_seconds),
                       ("num_train", num_train), ("num_test", num_test)):
    checks.positive(f"synth_events {field}", value)
  name = f"sr{sample_rate}_len{clip_seconds:g}s_n{num_train}-{num_test}_seed{seed}"
  return SynthEventsConfig(name=name, sample_rate=sample_rate, clip_seconds=clip_seconds,
                           num_train=num_train, num_test=num_test, seed=seed)


class SynthEvents(tfds.core.GeneratorBasedBuilder):
  """Parametric sound events (tones, chirps, noise bursts, clicks, impacts, ...) over noise."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [synth_events_config()]

  def _info(self) -> tfds.core.DatasetInfo:
    num_samples = int(round(self.builder_config.sample_rate * self.builder_config.clip_seconds))
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(num_samples,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=synthetic.CLASS_NAMES),
        }),
        supervised_keys=("audio", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: everything is synthesised.
    config = self.builder_config
    return {
        "train": self._generate_examples(split_id=0, size=config.num_train),
        "test": self._generate_examples(split_id=1, size=config.num_test),
    }

  def _generate_examples(self, split_id: int, size: int):
    config = self.builder_config
    num_samples = int(round(config.sample_rate * config.clip_seconds))
    num_classes = len(synthetic.CLASS_NAMES)
    for index in range(size):
      rng = np.random.default_rng([config.seed, split_id, index])
      label = index % num_classes  # Balanced classes; order is shuffled at read time.
      audio = synthetic.synth_event(rng, label, sample_rate=config.sample_rate,
                                    num_samples=num_samples)
      yield index, {"audio": audio, "label": label}
