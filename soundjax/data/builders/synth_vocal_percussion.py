"""`synth_vocal_percussion`: simulated users' vocal drum utterances at every label level (Paper 2).

The offline stand-in for AVP (see `soundjax.data.synthetic.vocal_percussion` for how a voice and
an utterance are made). Like an AVP participant, each user records four isolated takes (one per
instrument, `utterances_per_instrument` each) and one improvised take (`test_utterances` long, a
groove over all four instruments). Splits:
- `train`: every user's isolated takes; `test`: every user's improvised take. Fit a per-user
  classifier on `train` records of that user and test on `test` records of the same user; train
  an embedding network on the `train` (and `test`) records of the users not held out.
Each record is one utterance, `audio [clip_samples]` float32 starting at its annotated onset,
zero from the next onset of its take on (the published onset-to-next-onset segments, padded),
with `user`, `take`, `position` (index in the take), `onset_seconds` (time in the take), so a
take can also be read as a sequence, and the labels of every level as ClassLabels:
`instrument` (4), `instrument_reduced` (2), `phoneme_onset` (13), `phoneme_nucleus` (16),
`phoneme_onset_reduced` (5), `phoneme_nucleus_reduced` (7), `syllable` (an index into the
onset-nucleus pairs `SYLLABLES`), `syllable_reduced`, `boxeme` (`user * 4 + instrument`).
Records are stored in generation order (user, take, position). Utterance `k` of a take depends
only on `(seed, user, take, k)` and the sound settings, not on the takes' lengths or the number
of users.

With `augmentations=N` (published: 10) each `train` utterance is followed by N augmented copies
(`soundjax.data.augmentation.pitch_shift_and_stretch`: a pitch shift of U(-1.5, 1.5) semitones
and a time stretch of U(0.8, 1.2) in a random order), records with the original's every field
but `audio` and `augmentation` (0 for an original, 1..N for its copies); copy `k` depends only on
`(seed, user, take, position, k)`. The `test` split is never augmented.

The default rate is 16 kHz, not AVP's 44.1 kHz: the generator puts nothing above 7 kHz, so
16 kHz loses no content while storing 2.8x less and generating 2.3x faster. The default clip
of 0.4 s holds the 48 frames at an 8 ms hop of the published input patches.
"""

import dataclasses
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
import tensorflow_datasets as tfds

from soundjax import checks
from soundjax.data import augmentation
from soundjax.data.synthetic import vocal_percussion as vp

# Takes 0-3 are the isolated takes of `vp.INSTRUMENTS`, in that order.
TAKES = ("isolated_kd", "isolated_sd", "isolated_hhc", "isolated_hho", "improvised")
IMPROVISED = TAKES.index("improvised")
LABELS = ("instrument", "instrument_reduced", "phoneme_onset", "phoneme_nucleus",
          "phoneme_onset_reduced", "phoneme_nucleus_reduced", "syllable", "syllable_reduced",
          "boxeme")
# The shortest clip that holds a burst and the start of a nucleus.
MIN_CLIP_SECONDS = 0.05
# Independent random streams of `(seed, stream, user, ...)`.
_VOICE, _STEP, _SOUND, _TAKE, _AUGMENT = range(5)


@dataclasses.dataclass
class SynthVocalPercussionConfig(tfds.core.BuilderConfig):
  """Size and sound of the synthetic set; the config name encodes every field, so sets built with
  different settings never share a folder."""
  sample_rate: int = 16000
  clip_seconds: float = 0.4
  num_users: int = 28
  utterances_per_instrument: int = 24
  test_utterances: int = 48
  seed: int = 0
  augmentations: int = 0


def synth_vocal_percussion_config(*, sample_rate=16000, clip_seconds=0.4, num_users=28,
                                  utterances_per_instrument=24, test_utterances=48,
                                  seed=0, augmentations=0) -> SynthVocalPercussionConfig:
  """Returns a validated config named after its settings.

  Args:
    sample_rate: in Hz, at least 16000 (the generator's content reaches 7 kHz).
    clip_seconds: the segment stored per utterance from its onset, at least 0.05 s. 0.4 s holds
      the published 48 frames at an 8 ms hop.
    num_users: simulated users (AVP: 28).
    utterances_per_instrument: utterances of each isolated take (the `train` split holds
      `num_users * 4 *` this many).
    test_utterances: utterances of each user's improvised take (the `test` split).
    seed: the seed every voice, utterance and augmentation is drawn from.
    augmentations: augmented copies stored after each `train` utterance (published: 10); the
      name ends in `_aug<N>` when it is not 0.

  The defaults give 144 utterances per user (AVP averages 349), 4032 in all (84 MB), and
  prepare in about 9 s on 2 cores.

  Example:
    >>> synth_vocal_percussion_config(num_users=4, utterances_per_instrument=3).name
    'sr16000_len0.4s_users4_n3-48_seed0'
  """
  def field(name):
    return f"synth_vocal_percussion: {name}"
  checks.integer(field("sample_rate"), sample_rate, vp.MIN_SAMPLE_RATE)
  if checks.positive(field("clip_seconds"), clip_seconds) < MIN_CLIP_SECONDS:
    raise ValueError(f"{field('clip_seconds')} must be at least {MIN_CLIP_SECONDS} s, "
                     f"got {clip_seconds!r}")
  for name, value in (("num_users", num_users),
                      ("utterances_per_instrument", utterances_per_instrument),
                      ("test_utterances", test_utterances)):
    checks.integer(field(name), value, 1)
  checks.integer(field("seed"), seed, 0)
  checks.integer(field("augmentations"), augmentations, 0)
  name = (f"sr{sample_rate}_len{clip_seconds:g}s_users{num_users}"
          f"_n{utterances_per_instrument}-{test_utterances}_seed{seed}")
  name += f"_aug{augmentations}" if augmentations else ""
  return SynthVocalPercussionConfig(
      name=name, sample_rate=int(sample_rate), clip_seconds=float(clip_seconds),
      num_users=int(num_users), utterances_per_instrument=int(utterances_per_instrument),
      test_utterances=int(test_utterances), seed=int(seed), augmentations=int(augmentations))


def num_samples(config: SynthVocalPercussionConfig) -> int:
  """Samples per stored utterance."""
  return int(round(config.sample_rate * config.clip_seconds))


def user_names(num_users: int) -> Tuple[str, ...]:
  """`user00`, `user01`, ...: the `user` ClassLabel's names."""
  width = max(2, len(str(num_users - 1)))
  return tuple(f"user{user:0{width}d}" for user in range(num_users))


def voice(config: SynthVocalPercussionConfig, user: int) -> vp.Voice:
  """User `user`'s traits, the same in every take."""
  return vp.draw_voice(np.random.default_rng([config.seed, _VOICE, user]))


def take_plan(config: SynthVocalPercussionConfig, user: int, take: int,
              length: int) -> Tuple[List[vp.Step], np.ndarray, float]:
  """The first `length` steps of a take, their onsets (seconds) and the take's level offset."""
  user_voice = voice(config, user)
  take_rng = np.random.default_rng([config.seed, _TAKE, user, take])
  lead_in, level_db = take_rng.uniform(0.2, 0.6), take_rng.normal(0.0, 1.0)
  instrument = None if take == IMPROVISED else take
  steps = [vp.draw_step(np.random.default_rng([config.seed, _STEP, user, take, position]),
                        user_voice, instrument, position) for position in range(length)]
  iois = np.array([step.ioi_seconds for step in steps])
  onsets = lead_in + np.concatenate([[0.0], np.cumsum(iois[:-1])])
  return steps, onsets, float(level_db)


def take_records(config: SynthVocalPercussionConfig, user: int, take: int,
                 length: int) -> Iterator[Dict[str, object]]:
  """The records of a take's first `length` utterances, in order: what the builder stores."""
  user_voice = voice(config, user)
  steps, onsets, level_db = take_plan(config, user, take, length)
  for position, (step, onset) in enumerate(zip(steps, onsets)):
    rng = np.random.default_rng([config.seed, _SOUND, user, take, position])
    audio = vp.synth_utterance(rng, user_voice, step.instrument, step.syllable,
                               sample_rate=config.sample_rate, num_samples=num_samples(config),
                               stop_seconds=step.ioi_seconds, level_db=level_db)
    yield {"audio": audio, "user": user, "take": take, "position": position,
           "onset_seconds": np.float32(onset), "augmentation": 0,
           **vp.label_levels(user, step.instrument, step.syllable)}


def augmented_records(config: SynthVocalPercussionConfig,
                      record: Dict[str, object]) -> Iterator[Dict[str, object]]:
  """Copies 1..`config.augmentations` of an original record, each with its audio augmented."""
  identity = (record["user"], record["take"], record["position"])
  for copy in range(1, config.augmentations + 1):
    rng = np.random.default_rng([config.seed, _AUGMENT, *identity, copy])
    audio = augmentation.pitch_shift_and_stretch(record["audio"], config.sample_rate, rng)
    yield {**record, "audio": audio, "augmentation": copy}


def label_features(*, syllables: Sequence[str], syllables_reduced: Sequence[str],
                   boxemes: Sequence[str]) -> Dict[str, tfds.features.ClassLabel]:
  """The label levels of a vocal-percussion record (`LABELS`), here and in `avp_lvt`; only the
  syllable and boxeme index spaces differ between the two sets."""
  label = tfds.features.ClassLabel
  return {
      "instrument": label(names=vp.INSTRUMENTS),
      "instrument_reduced": label(names=vp.INSTRUMENTS_REDUCED),
      "phoneme_onset": label(names=vp.ONSETS),
      "phoneme_nucleus": label(names=vp.NUCLEI),
      "phoneme_onset_reduced": label(names=vp.ONSETS_REDUCED),
      "phoneme_nucleus_reduced": label(names=vp.NUCLEI_REDUCED),
      "syllable": label(names=syllables),
      "syllable_reduced": label(names=syllables_reduced),
      "boxeme": label(names=boxemes),
  }


class SynthVocalPercussion(tfds.core.GeneratorBasedBuilder):
  """Simulated users' vocal imitations of kick, snare and hi-hats, with AVP's label levels."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "The `augmentation` feature and the `augmentations` setting."}
  BUILDER_CONFIGS = [synth_vocal_percussion_config()]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    users = user_names(config.num_users)
    label = tfds.features.ClassLabel
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            # Raw bytes: faster to write than a protobuf float list, read back the same.
            "audio": tfds.features.Tensor(shape=(num_samples(config),), dtype=np.float32,
                                          encoding=tfds.features.Encoding.BYTES),
            "user": label(names=users),
            "take": label(names=TAKES),
            "position": tfds.features.Scalar(dtype=np.int32),
            "onset_seconds": tfds.features.Scalar(dtype=np.float32),
            "augmentation": tfds.features.Scalar(dtype=np.int32),
            **label_features(syllables=vp.SYLLABLE_NAMES,
                             syllables_reduced=vp.SYLLABLE_REDUCED_NAMES,
                             boxemes=[f"{user}_{instrument}" for user in users
                                      for instrument in vp.INSTRUMENTS]),
        }),
        supervised_keys=("audio", "instrument"),
        # Records in generation order, so a take's utterances are consecutive and in sequence;
        # training shuffles at read time.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: everything is synthesised.
    config = self.builder_config
    isolated = [(take, config.utterances_per_instrument) for take in range(IMPROVISED)]
    return {"train": self._generate_examples(isolated, augment=True),
            "test": self._generate_examples([(IMPROVISED, config.test_utterances)],
                                            augment=False)}

  def _generate_examples(self, takes, augment: bool):
    config = self.builder_config
    key = 0
    for user in range(config.num_users):
      for take, length in takes:
        for record in take_records(config, user, take, length):
          copies = augmented_records(config, record) if augment else ()
          for stored in (record, *copies):
            yield key, stored
            key += 1
