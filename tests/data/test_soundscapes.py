"""Synthetic soundscapes: determinism, event ranges, SNRs, labels vs audio, and frame targets."""

import numpy as np
import pytest

from soundjax import data
from soundjax.data import sed_targets
from soundjax.data.builders import synth_soundscapes as builder_module
from soundjax.data.synthetic import events, soundscapes
from soundjax.metrics import sed

RATE, SECONDS = 8000, 2.0
TINY = dict(sample_rate=RATE, clip_seconds=SECONDS, num_train=6, num_validate=2, num_test=2,
            seed=0)
FIELDS = ("audio", "onsets", "offsets", "labels", "snr_db")


def records(builder, split):
  source = data.split_source(builder, split)
  return [source[index] for index in range(len(source))]


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
  return data.prepare("synth_soundscapes", data_dir=str(tmp_path_factory.mktemp("tfds")), **TINY)


def test_builds_are_deterministic_per_seed_and_clip_index(builder, tmp_path):
  again = data.prepare("synth_soundscapes", data_dir=str(tmp_path / "again"), **TINY)
  for split in builder_module.SPLITS:
    for one, other in zip(records(builder, split), records(again, split), strict=True):
      for field in FIELDS:
        np.testing.assert_array_equal(one[field], other[field])
  # Clip k of a split does not depend on the split's size.
  fewer = data.prepare("synth_soundscapes", data_dir=str(tmp_path / "fewer"),
                       **{**TINY, "num_train": 3})
  for one, other in zip(records(builder, "train")[:3], records(fewer, "train"), strict=True):
    np.testing.assert_array_equal(one["audio"], other["audio"])
  reseeded = data.prepare("synth_soundscapes", data_dir=str(tmp_path / "seed1"),
                          **{**TINY, "seed": 1})
  for one, other in zip(records(builder, "test"), records(reseeded, "test")):
    assert not np.allclose(one["audio"], other["audio"])


def test_records_are_the_generated_clips_in_order(builder):
  config = builder.builder_config
  labels = builder.info.features["labels"].feature
  assert labels.names == list(events.CLASS_NAMES) and data.num_classes(builder) == 12
  assert {split: len(records(builder, split)) for split in builder_module.SPLITS} == {
      "train": 6, "validate": 2, "test": 2}
  for index, record in enumerate(records(builder, "validate")):
    clip = builder_module.soundscape(config, "validate", index)
    assert record["filename"].decode() == f"soundscape_validate_{index:06d}"
    assert record["audio"].shape == (RATE * SECONDS,) and record["audio"].dtype == np.float32
    assert record["onsets"].dtype == record["offsets"].dtype == np.float32
    for field in FIELDS:
      np.testing.assert_array_equal(np.asarray(record[field]), getattr(clip, field))


def test_event_counts_durations_and_times_are_in_range():
  counts, durations, clipped = [], [], 0
  for index in range(150):
    clip = soundscapes.synth_soundscape(np.random.default_rng([5, index]), events.CLASS_NAMES,
                                        sample_rate=RATE, num_samples=10 * RATE)
    counts.append(clip.labels.size)
    assert np.all(clip.onsets >= 0) and np.all(clip.offsets <= 10.0)
    assert np.all(np.diff(clip.onsets) >= 0)  # Sorted by onset.
    durations.extend(clip.offsets - clip.onsets)
    clipped += np.sum(clip.offsets == 10.0)
  assert set(counts) == set(range(1, 10))
  durations = np.asarray(durations)
  assert 0.5 - 1e-6 <= durations.min() < 0.6 and 3.9 < durations.max() <= 4.0 + 1e-6
  assert clipped > 0  # Some events run into the clip's end and are cut there.


def test_snrs_are_6_to_30_db_and_events_sound_only_inside_their_spans():
  for index in range(20):
    clip = soundscapes.synth_soundscape(np.random.default_rng([6, index]), events.CLASS_NAMES,
                                        sample_rate=RATE, num_samples=int(4 * RATE),
                                        background="pink" if index % 2 else "brownian")
    np.testing.assert_allclose(clip.audio, clip.background + clip.sources.sum(0), atol=1e-6)
    assert np.max(np.abs(clip.audio)) <= 1.0
    background_power = np.mean(np.square(clip.background, dtype=np.float64))
    for source, onset, offset, snr in zip(clip.sources, clip.onsets, clip.offsets, clip.snr_db):
      start, stop = int(round(onset * RATE)), int(round(offset * RATE))
      assert not source[:start].any() and not source[stop:].any()
      measured = 10 * np.log10(np.mean(np.square(source[start:stop], dtype=np.float64))
                               / background_power)
      np.testing.assert_allclose(measured, snr, atol=1e-3)
      assert soundscapes.MIN_SNR_DB <= snr <= soundscapes.MAX_SNR_DB


def test_labelled_frames_carry_energy_above_the_background(builder):
  """Stored audio: frames inside events are louder; outside them it is the background alone."""
  frame = RATE // 50
  inside, outside = [], []
  for split in builder_module.SPLITS:
    for index, record in enumerate(records(builder, split)):
      active = sed_targets.events_to_frame_targets(
          record["onsets"], record["offsets"], record["labels"], num_frames=int(SECONDS * 50),
          frame_rate=50, num_classes=12).any(axis=1)
      power = np.mean(np.square(record["audio"].reshape(-1, frame)), axis=1)
      inside.extend(power[active])
      outside.extend(power[~active])
      quiet = np.repeat(~active, frame)
      background = builder_module.soundscape(builder.builder_config, split, index).background
      np.testing.assert_array_equal(record["audio"][quiet], background[quiet])
  assert len(outside) > 10 and np.mean(inside) > 10 * np.mean(outside)


@pytest.mark.parametrize("background, slope", [("brownian", -2.0), ("pink", -1.0)])
def test_backgrounds_have_their_spectral_slope(background, slope):
  noise = soundscapes.colored_noise(np.random.default_rng(0), 2 ** 16, sample_rate=16000,
                                    exponent=soundscapes.BACKGROUNDS[background])
  freqs = np.fft.rfftfreq(noise.size, 1 / 16000)
  power = np.abs(np.fft.rfft(noise)) ** 2
  band = (freqs > 100) & (freqs < 4000)
  fitted = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
  assert abs(fitted - slope) < 0.1
  np.testing.assert_allclose(soundscapes.rms(noise), 1.0)


def test_class_subsets_relabel_and_name_the_config():
  config = builder_module.synth_soundscapes_config(classes=("clicks", "tone"), num_train=1,
                                                   num_validate=1, num_test=1)
  assert config.name == "sr16000_len10s_n1-1-1_seed0_brownian_clicks-tone"
  default = builder_module.synth_soundscapes_config(classes=events.CLASS_NAMES)
  assert default.name == "sr16000_len10s_n600-200-200_seed0_brownian"
  labels = np.concatenate([builder_module.soundscape(config, "train", index).labels
                           for index in range(10)])
  assert set(labels) == {0, 1}


@pytest.mark.parametrize("settings, message", [
    (dict(sample_rate=4000), "sample_rate"),
    (dict(clip_seconds=0.25), "shortest event"),
    (dict(num_test=0), "num_test"),
    (dict(classes=("tone", "tones")), "did you mean 'tone'"),
    (dict(classes=("tone", "tone")), "distinct"),
    (dict(background="white"), "background"),
])
def test_bad_settings_are_refused(settings, message, tmp_path):
  with pytest.raises(ValueError, match=message):
    data.prepare("synth_soundscapes", data_dir=str(tmp_path), **settings)


def test_frame_targets_of_hand_made_events():
  targets = sed_targets.events_to_frame_targets
  # Frame t covers [t / 2, (t + 1) / 2): [0.5, 1.0) is frame 1 alone; [0.3, 0.7) overlaps 0 and 1.
  np.testing.assert_array_equal(
      targets([0.5, 0.3, 1.5], [1.0, 0.7, 9.0], [1, 0, 0], num_frames=4, frame_rate=2,
              num_classes=3),
      [[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
  # float32 times do not spill into the next frame; a zero-length event marks its frame.
  np.testing.assert_array_equal(
      targets(np.float32([0.3, 0.05]), np.float32([0.6, 0.05]), [0, 1], num_frames=8,
              frame_rate=10, num_classes=2)[:, 0], [0, 0, 0, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(
      targets([0.2], [0.2], [1], num_frames=4, frame_rate=10, num_classes=2)[:, 1], [0, 0, 1, 0])
  # Overlapping events of one class; no events at all (as read back: empty lists).
  np.testing.assert_array_equal(
      targets([0.0, 0.2], [0.3, 0.4], [0, 0], num_frames=5, frame_rate=10, num_classes=1)[:, 0],
      [1, 1, 1, 1, 0])
  empty = targets([], [], [], num_frames=3, frame_rate=50, num_classes=2)
  assert empty.shape == (3, 2) and empty.dtype == np.float32 and not empty.any()


def test_frame_targets_round_trip_through_frame_decoding():
  reference = [(0.2, 0.5, "a"), (0.3, 0.9, "b"), (0.7, 1.0, "a")]
  onsets, offsets, labels = zip(*[(on, off, "ab".index(name)) for on, off, name in reference])
  activity = sed_targets.events_to_frame_targets(onsets, offsets, labels, num_frames=20,
                                                 frame_rate=10, num_classes=2)
  decoded = sed.frames_to_events(activity, hop_seconds=0.1, labels=["a", "b"])
  np.testing.assert_allclose([event[:2] for event in decoded], [event[:2] for event in reference])
  assert [event[2] for event in decoded] == ["a", "b", "a"]
  record = {"onsets": np.float32(onsets), "offsets": np.float32(offsets), "labels": list(labels)}
  assert [event[2] for event in sed_targets.record_events(record, "ab")] == ["a", "b", "a"]


@pytest.mark.parametrize("onsets, offsets, labels, message", [
    ([0.5], [0.4], [0], "onset <= offset"),
    ([-0.1], [0.4], [0], "onset <= offset"),
    ([0.1], [0.4], [3], r"labels must be integers in \[0, 3\)"),
    ([0.1, 0.2], [0.4], [0, 1], "one length"),
    ([np.nan], [0.4], [0], "finite"),
])
def test_frame_targets_refuse_bad_events(onsets, offsets, labels, message):
  with pytest.raises(ValueError, match=message):
    sed_targets.events_to_frame_targets(onsets, offsets, labels, num_frames=5, frame_rate=10,
                                        num_classes=3)


def test_batches_carry_frame_targets_of_each_clip(builder):
  frame_targets = {"num_frames": 100, "frame_rate": 50.0}
  batch = data.batches(builder, "train", batch_size=3, frame_targets=frame_targets)[0]
  assert batch["x"].shape == (3, int(RATE * SECONDS)) and batch["y"].shape == (3, 100, 12)
  for record, targets in zip(records(builder, "train")[:3], batch["y"]):
    expected = sed_targets.events_to_frame_targets(
        record["onsets"], record["offsets"], record["labels"], num_classes=12, **frame_targets)
    np.testing.assert_array_equal(targets, expected)
    np.testing.assert_array_equal(batch["x"][0], records(builder, "train")[0]["audio"])
  with pytest.raises(ValueError, match="frame_targets"):
    data.batches(builder, "train", batch_size=3)[0]
