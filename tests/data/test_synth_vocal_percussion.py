"""Synthetic vocal percussion: determinism, layout, label levels, voices, instruments, syllables."""

import itertools

import numpy as np
import pytest

from soundjax import data
from soundjax.data import augmentation
from soundjax.data.builders import synth_vocal_percussion as builder_module
from soundjax.data.synthetic import vocal_percussion as vp

RATE = 16000
TINY = dict(sample_rate=RATE, clip_seconds=0.4, num_users=4, utterances_per_instrument=4,
            test_utterances=12, seed=0)
FIELDS = ("audio", "user", "take", "position", "onset_seconds",
          "augmentation") + builder_module.LABELS
# Two copies of each of a smaller set's train utterances: librosa takes ~10 ms a copy.
AUGMENTED = {**TINY, "num_users": 2, "utterances_per_instrument": 2, "test_utterances": 3,
             "augmentations": 2}
# The published reduction (Delgado et al.'s `Create_Phoneme_Labels`), in its class order, each
# group under the name the builder gives it.
PUBLISHED_ONSET_GROUPS = [("ts", ("ts", "s")), ("tʃ", ("tʃ", "tɕ", "dʒ", "tʒ")),
                          ("k", ("kg", "k", "kʃ")), ("p", ("ʡʢ", "p")), ("t", ("t", "!"))]
PUBLISHED_NUCLEUS_GROUPS = [("a", ("a", "æ", "ɐ", "ʌ")), ("e", ("e", "œ", "ə")),
                            ("i", ("i", "y", "ɪ")), ("o", ("o", "ʊ")), ("u", ("u", "ɯ")),
                            ("h", ("h",)), ("other", ("other",))]


def records(builder, split):
  source = data.split_source(builder, split)
  return [source[index] for index in range(len(source))]


def names(builder, feature):
  return builder.info.features[feature].names


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
  return data.prepare("synth_vocal_percussion", data_dir=str(tmp_path_factory.mktemp("tfds")),
                      **TINY)


def spectral_centroid(audio, sample_rate=RATE):
  power = np.abs(np.fft.rfft(np.asarray(audio, np.float64))) ** 2
  return np.sum(power * np.fft.rfftfreq(audio.size, 1 / sample_rate)) / np.sum(power)


def sounding_seconds(audio, sample_rate=RATE):
  """Time in 10 ms frames within 25 dB of the loudest frame."""
  frame = sample_rate // 100
  power = np.mean(np.square(audio[:audio.size // frame * frame].reshape(-1, frame)), axis=1)
  return np.sum(power > power.max() * 10 ** -2.5) / 100


def fundamental_hz(audio, sample_rate=RATE):
  """f0 of the loudest 40 ms below 500 Hz (under the F1 of /a/), at the autocorrelation's peak
  lag in 60-400 Hz."""
  spectrum = np.fft.rfft(np.asarray(audio, np.float64))
  spectrum[np.fft.rfftfreq(audio.size, 1 / sample_rate) > 500] = 0
  low = np.fft.irfft(spectrum, n=audio.size)
  window = int(0.04 * sample_rate)
  start = int(np.argmax(np.convolve(low ** 2, np.ones(window), "valid")))
  segment = low[start:start + window] * np.hanning(window)
  autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(segment, 2 * window)) ** 2)[:window]
  shortest, longest = sample_rate // 400, sample_rate // 60
  return sample_rate / (shortest + np.argmax(autocorrelation[shortest:longest]))


def test_builds_are_deterministic_per_seed_and_independent_of_sizes(builder, tmp_path):
  again = data.prepare("synth_vocal_percussion", data_dir=str(tmp_path / "again"), **TINY)
  for split in ("train", "test"):
    for one, other in zip(records(builder, split), records(again, split), strict=True):
      for field in FIELDS:
        np.testing.assert_array_equal(one[field], other[field])
  # Utterance k of a take depends on (seed, user, take, k) only: not on take lengths or users.
  smaller = data.prepare("synth_vocal_percussion", data_dir=str(tmp_path / "smaller"),
                         **{**TINY, "num_users": 2, "utterances_per_instrument": 2,
                            "test_utterances": 5})
  for split in ("train", "test"):
    full = {(r["user"], r["take"], r["position"]): r for r in records(builder, split)}
    for record in records(smaller, split):
      one = full[(record["user"], record["take"], record["position"])]
      for field in FIELDS:
        np.testing.assert_array_equal(one[field], record[field])
  reseeded = data.prepare("synth_vocal_percussion", data_dir=str(tmp_path / "seed1"),
                          **{**TINY, "seed": 1})
  for one, other in zip(records(builder, "test"), records(reseeded, "test")):
    assert not np.allclose(one["audio"], other["audio"])


def test_splits_hold_isolated_and_improvised_takes_in_order(builder):
  train, test = records(builder, "train"), records(builder, "test")
  assert len(train) == 4 * 4 * 4 and len(test) == 4 * 12
  assert names(builder, "user") == ["user00", "user01", "user02", "user03"]
  assert names(builder, "instrument") == ["kd", "sd", "hhc", "hho"]
  assert data.num_classes(builder) == 4  # Supervised by instrument.
  expected_train = list(itertools.product(range(4), range(4), range(4)))
  assert [(r["user"], r["take"], r["position"]) for r in train] == expected_train
  assert all(r["instrument"] == r["take"] for r in train)  # An isolated take per instrument.
  assert [(r["user"], r["position"]) for r in test] == list(itertools.product(range(4), range(12)))
  assert {names(builder, "take")[r["take"]] for r in test} == {"improvised"}
  assert {r["instrument"] for r in test} == set(range(4))  # The groove uses every instrument.
  for split in (train, test):
    for record in split:
      audio = record["audio"]
      assert audio.shape == (int(0.4 * RATE),) and audio.dtype == np.float32
      assert np.all(np.isfinite(audio)) and 0.05 < np.max(np.abs(audio)) <= 1.0
    for _, take in itertools.groupby(split, key=lambda r: (r["user"], r["take"])):
      assert np.all(np.diff([r["onset_seconds"] for r in take]) > 0)


def test_improvised_utterances_are_cut_at_the_next_onset(builder):
  cut = 0
  for _, take in itertools.groupby(records(builder, "test"), key=lambda r: r["user"]):
    take = list(take)
    for record, following in zip(take, take[1:]):
      stop = int(np.ceil((following["onset_seconds"] - record["onset_seconds"]) * RATE)) + 1
      if stop < record["audio"].size:
        cut += 1
        assert not np.any(record["audio"][stop:])
        assert np.all(record["audio"][:stop - RATE // 100] != 0)  # The noise floor until then.
  assert cut > 20  # Improvised onsets come faster than the 0.4 s clip.


def test_every_label_level_follows_from_user_instrument_and_syllable(builder):
  onset_group = {m: g for g, members in PUBLISHED_ONSET_GROUPS for m in members}
  nucleus_group = {m: g for g, members in PUBLISHED_NUCLEUS_GROUPS for m in members}
  assert len(names(builder, "phoneme_onset")) == 13 == len(onset_group)
  assert len(names(builder, "phoneme_nucleus")) == 16 == len(nucleus_group)
  assert names(builder, "phoneme_onset_reduced") == [g for g, _ in PUBLISHED_ONSET_GROUPS]
  assert names(builder, "phoneme_nucleus_reduced") == [g for g, _ in PUBLISHED_NUCLEUS_GROUPS]
  # The syllable space uses every onset and nucleus label.
  used = [name.split("_", 1) for name in names(builder, "syllable")]
  assert {o for o, _ in used} == set(onset_group) and {n for _, n in used} == set(nucleus_group)
  for record in records(builder, "train") + records(builder, "test"):
    label = {field: names(builder, field)[record[field]] for field in builder_module.LABELS}
    onset, nucleus = label["phoneme_onset"], label["phoneme_nucleus"]
    assert label["syllable"] == f"{onset}_{nucleus}"
    assert label["phoneme_onset_reduced"] == onset_group[onset]
    assert label["phoneme_nucleus_reduced"] == nucleus_group[nucleus]
    assert label["syllable_reduced"] == (f"{label['phoneme_onset_reduced']}_"
                                         f"{label['phoneme_nucleus_reduced']}")
    assert label["instrument_reduced"] == ("kick_snare" if label["instrument"] in ("kd", "sd")
                                           else "hihat")
    assert record["boxeme"] == 4 * record["user"] + record["instrument"]
    assert label["boxeme"] == f"{names(builder, 'user')[record['user']]}_{label['instrument']}"


def test_a_users_pitch_persists_and_separates_users():
  """Measured f0 of one syllable: users differ far more than a user's utterances do."""
  syllable = vp.SYLLABLE_NAMES.index("k_a")
  medians, spreads = [], []
  for user in range(10):
    voice = vp.draw_voice(np.random.default_rng([7, user]))
    f0 = [fundamental_hz(vp.synth_utterance(np.random.default_rng([7, user, k]), voice, vp.SD,
                                            syllable, sample_rate=RATE, num_samples=6400))
          for k in range(8)]
    medians.append(np.median(np.log(f0)))
    spreads.append(np.var(np.log(f0)))
    # The measurement reads the voice it was given (the contour's start glides down to it).
    assert abs(np.exp(medians[-1]) / voice.f0_hz - 1) < 0.15
  assert np.var(medians) > 4 * np.mean(spreads)


def test_instruments_are_told_apart_by_their_sound(builder):
  by_user = {}
  for record in records(builder, "train"):
    by_user.setdefault(record["user"], {}).setdefault(record["instrument"], []).append(
        record["audio"])
  for takes in by_user.values():
    centroid = {k: np.median([spectral_centroid(a) for a in clips]) for k, clips in takes.items()}
    length = {k: np.median([sounding_seconds(a) for a in clips]) for k, clips in takes.items()}
    assert min(centroid[vp.HHC], centroid[vp.HHO]) > 2 * centroid[vp.KD]
    assert centroid[vp.KD] < 1000  # A kick is a low thud.
    assert length[vp.HHO] > 1.5 * length[vp.HHC]  # An open hi-hat holds its fricative.


def test_users_favour_different_syllables_for_an_instrument():
  """Syllables depend on the user beyond the instrument: I(user; syllable | instrument) > 1 bit."""
  config = builder_module.synth_vocal_percussion_config(num_users=12)
  counts = np.zeros((12, 4, len(vp.SYLLABLES)))
  for user, take in itertools.product(range(12), range(4)):
    for step in builder_module.take_plan(config, user, take, 40)[0]:
      counts[user, step.instrument, step.syllable] += 1
  plausible = [{f"{o}_{n}" for o, n, _ in choices} for choices in vp.SYLLABLE_CHOICES]
  for instrument in range(4):
    joint = counts[:, instrument] / counts[:, instrument].sum()
    syllable_marginal, user_marginal = joint.sum(0), joint.sum(1)
    nonzero = joint > 0
    information = np.sum(joint[nonzero] * np.log2(
        joint[nonzero] / np.outer(user_marginal, syllable_marginal)[nonzero]))
    assert information > 1.0
    modes = set(np.argmax(counts[:, instrument], axis=1))
    assert len(modes) >= 3
    used = {vp.SYLLABLE_NAMES[s] for s in np.flatnonzero(counts[:, instrument].sum(0))}
    assert used <= plausible[instrument]


def test_nothing_sounds_above_8_khz_so_16_khz_loses_nothing():
  voice = vp.draw_voice(np.random.default_rng(3))
  ratios = []
  for syllable in range(len(vp.SYLLABLES)):
    instrument = syllable % 4  # Every syllable and every instrument, without all their pairs.
    clips = {rate: vp.synth_utterance(np.random.default_rng([3, instrument, syllable]), voice,
                                      instrument, syllable, sample_rate=rate,
                                      num_samples=int(0.4 * rate)) for rate in (RATE, 44100)}
    power = np.abs(np.fft.rfft(clips[44100].astype(np.float64))) ** 2
    above = np.fft.rfftfreq(clips[44100].size, 1 / 44100) > 8000
    assert power[above].sum() < 1e-3 * power.sum()
    ratios.append(spectral_centroid(clips[RATE]) / spectral_centroid(clips[44100], 44100))
  # The same draws at either rate make the same sound, up to the noise's realisation.
  assert np.median(np.abs(np.log(ratios))) < 0.1


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
  return data.prepare("synth_vocal_percussion",
                      data_dir=str(tmp_path_factory.mktemp("tfds_augmented")), **AUGMENTED)


def identity(record):
  return (int(record["user"]), int(record["take"]), int(record["position"]))


def test_train_utterances_are_followed_by_their_augmented_copies(builder, augmented):
  train = records(augmented, "train")
  assert len(train) == 2 * 4 * 2 * 3
  originals = {identity(r): r for r in records(builder, "train")}
  for index in range(0, len(train), 3):
    original, copies = train[index], train[index + 1:index + 3]
    assert [r["augmentation"] for r in (original, *copies)] == [0, 1, 2]
    # The original is the unaugmented build's record (another size, the same utterance).
    for field in FIELDS:
      np.testing.assert_array_equal(original[field], originals[identity(original)][field])
    for copy, record in enumerate(copies, 1):
      for field in FIELDS:
        if field not in ("audio", "augmentation"):
          np.testing.assert_array_equal(record[field], original[field])
      assert record["audio"].shape == (int(0.4 * RATE),) and record["audio"].dtype == np.float32
      assert not np.allclose(record["audio"], original["audio"], atol=1e-3)
      # Copy k is the augmentation drawn from (seed, user, take, position, k) alone.
      rng = np.random.default_rng([0, builder_module._AUGMENT, *identity(original), copy])
      np.testing.assert_array_equal(record["audio"], augmentation.pitch_shift_and_stretch(
          original["audio"], RATE, rng))


def test_the_test_split_is_never_augmented(builder, augmented):
  test = records(augmented, "test")
  assert len(test) == 2 * 3 and all(r["augmentation"] == 0 for r in test)
  full = {identity(r): r for r in records(builder, "test")}
  for record in test:
    for field in FIELDS:
      np.testing.assert_array_equal(record[field], full[identity(record)][field])
  assert all(r["augmentation"] == 0 for r in records(builder, "train"))  # augmentations=0.


def test_config_names_encode_every_setting():
  assert builder_module.synth_vocal_percussion_config().name == (
      "sr16000_len0.4s_users28_n24-48_seed0")
  assert builder_module.synth_vocal_percussion_config(augmentations=10).name == (
      "sr16000_len0.4s_users28_n24-48_seed0_aug10")
  config = builder_module.synth_vocal_percussion_config(
      sample_rate=44100, clip_seconds=0.5, num_users=3, utterances_per_instrument=5,
      test_utterances=7, seed=2)
  assert config.name == "sr44100_len0.5s_users3_n5-7_seed2"


@pytest.mark.parametrize("settings, message", [
    (dict(sample_rate=8000), "sample_rate"),
    (dict(sample_rate=16000.0), "sample_rate"),
    (dict(clip_seconds=0.01), "clip_seconds"),
    (dict(clip_seconds=float("nan")), "clip_seconds"),
    (dict(num_users=0), "num_users"),
    (dict(num_users=True), "num_users"),
    (dict(utterances_per_instrument=0), "utterances_per_instrument"),
    (dict(test_utterances=2.5), "test_utterances"),
    (dict(seed=-1), "seed"),
    (dict(augmentations=-1), "augmentations"),
    (dict(augmentations=1.5), "augmentations"),
])
def test_bad_settings_are_refused(settings, message, tmp_path):
  with pytest.raises(ValueError, match=message):
    data.prepare("synth_vocal_percussion", data_dir=str(tmp_path), **settings)


def test_several_labels_batch_as_one_label_per_head(builder):
  heads = ("phoneme_onset", "phoneme_nucleus")
  assert data.num_classes(builder, heads) == (len(names(builder, heads[0])),
                                              len(names(builder, heads[1])))
  batch = data.batches(builder, "train", batch_size=4, label=heads)[0]
  expected = [[record[heads[0]], record[heads[1]]] for record in records(builder, "train")[:4]]
  assert batch["y"].dtype == np.int32
  np.testing.assert_array_equal(batch["y"], expected)
  with pytest.raises(ValueError, match="no class label 'phoneme'"):
    data.batches(builder, "train", batch_size=4, label=("phoneme", "phoneme_nucleus"))
