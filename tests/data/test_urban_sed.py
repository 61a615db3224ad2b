"""The URBAN-SED builder on a tiny set in the published layout, and its bad-input errors."""

import glob
import os

import numpy as np
import pytest
import soundfile

from soundjax import data
from soundjax.data import sed_targets
from soundjax.data.builders import urban_sed

FILE_RATE, RATE, SECONDS = 16000, 8000, 1.0
# split -> {stem: [(onset, offset, label), ...]}; each event is a 1 kHz tone over faint noise.
CLIPS = {
    "train": {"soundscape_train_b": [(0.2, 0.5, "dog_bark"), (0.4, 0.8, "siren")],
              "soundscape_train_a": [(0.1, 0.3, "gun_shot")]},
    "validate": {"soundscape_validate_a": [(0.5, 1.0, "street_music")]},
    "test": {"soundscape_test_a": []},  # A soundscape without events.
}


def write_urban_sed(root, clips=CLIPS):
  """The manual layout: audio/{split}/*.wav and annotations/{split}/*.txt (plus unread .jams)."""
  rng = np.random.default_rng(0)
  t = np.arange(int(SECONDS * FILE_RATE)) / FILE_RATE
  for split, soundscapes in clips.items():
    for kind in ("audio", "annotations"):
      os.makedirs(os.path.join(root, kind, split), exist_ok=True)
    for stem, events in soundscapes.items():
      signal = 0.001 * rng.standard_normal(t.size)
      with open(os.path.join(root, "annotations", split, stem + ".txt"), "w") as file:
        for onset, offset, label in events:
          file.write(f"{onset:.3f}\t{offset:.3f}\t{label}\n")
          signal += 0.3 * np.sin(2 * np.pi * 1000 * t) * ((t >= onset) & (t < offset))
      with open(os.path.join(root, "annotations", split, stem + ".jams"), "w") as file:
        file.write("{}")
      soundfile.write(os.path.join(root, "audio", split, stem + ".wav"), signal, FILE_RATE)


def prepare(tmp_path, manual):
  return data.prepare("urban_sed", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual),
                      sample_rate=RATE)


def assert_nothing_written(tmp_path):
  builder_cls, make_config = data.builders.BUILDERS["urban_sed"]
  builder = builder_cls(data_dir=str(tmp_path / "tfds"), config=make_config(sample_rate=RATE),
                        file_format="array_record")
  assert not builder.is_prepared()
  assert not glob.glob(str(tmp_path / "tfds" / "**" / "*array_record*"), recursive=True)


@pytest.fixture(scope="module")
def builder(tmp_path_factory):
  root = tmp_path_factory.mktemp("urban_sed")
  write_urban_sed(str(root / "manual"))
  return prepare(root, root / "manual")


def test_reads_every_split_with_its_events_and_resampled_audio(builder):
  assert {split: info.num_examples for split, info in builder.info.splits.items()} == {
      "train": 2, "validate": 1, "test": 1}
  names = builder.info.features["labels"].feature.names
  assert names == list(urban_sed.CLASSES) and data.num_classes(builder) == 10
  for split, soundscapes in CLIPS.items():
    source = data.split_source(builder, split)
    records = [source[index] for index in range(len(source))]
    assert [r["filename"].decode() for r in records] == sorted(s + ".wav" for s in soundscapes)
    for record in records:
      events = soundscapes[record["filename"].decode()[:-4]]
      assert record["audio"].shape == (RATE * SECONDS,) and record["audio"].dtype == np.float32
      read = sed_targets.record_events(record, names)
      assert [event[2] for event in read] == [event[2] for event in events]
      np.testing.assert_allclose(np.reshape([event[:2] for event in read], (-1, 2)),
                                 np.reshape([event[:2] for event in events], (-1, 2)), atol=1e-6)
      assert record["onsets"].dtype == record["offsets"].dtype == np.float32
      # The labelled frames are where the tone is (the audio survived resampling to 8 kHz).
      active = sed_targets.events_to_frame_targets(
          record["onsets"], record["offsets"], record["labels"], num_frames=50, frame_rate=50,
          num_classes=10).any(axis=1)
      rms = np.sqrt(np.mean(np.square(record["audio"].reshape(50, -1)), axis=1))
      assert np.all(rms[active] > 0.1) and np.all(rms[~active] < 0.01)


def test_the_unpacked_archive_folder_is_found(tmp_path):
  write_urban_sed(str(tmp_path / "manual" / urban_sed.ARCHIVE_FOLDER),
                  {split: dict(list(clips.items())[:1]) for split, clips in CLIPS.items()})
  builder = prepare(tmp_path, tmp_path / "manual")
  assert builder.info.splits["train"].num_examples == 1


def test_missing_files_say_what_to_put_where(tmp_path):
  manual = tmp_path / "manual"
  (manual / "audio" / "train").mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as error:
    prepare(tmp_path, manual)
  message = str(error.value)
  assert str(manual) in message and "annotations/validate" in message and "audio/test" in message
  assert "onset<TAB>offset<TAB>label" in message and "audio/train, " not in message
  with pytest.raises(FileNotFoundError, match="urban_sed.*does not exist"):
    prepare(tmp_path, tmp_path / "nowhere")


def test_a_soundscape_without_its_annotation_is_named(tmp_path):
  manual = tmp_path / "manual"
  write_urban_sed(str(manual))
  os.remove(manual / "annotations" / "validate" / "soundscape_validate_a.txt")
  with pytest.raises(FileNotFoundError, match="lack their .txt annotation.*soundscape_validate_a"):
    prepare(tmp_path, manual)
  assert_nothing_written(tmp_path)


@pytest.mark.parametrize("row, message", [
    ("0.900\t0.500\tsiren", "onset <= offset"),
    ("-0.100\t0.500\tsiren", "onset <= offset"),
    ("nan\t0.500\tsiren", "finite"),
    ("0.100\t0.500\tsirens", "unknown label 'sirens' \\(did you mean 'siren'\\?\\)"),
    ("0.100\t0.500", "expected 'onset<TAB>offset<TAB>label'"),
    ("0.100\t0.500\tsiren\textra", "expected 'onset<TAB>offset<TAB>label'"),
    ("start\t0.500\tsiren", "must be numbers"),
])
def test_malformed_rows_name_file_and_line_and_write_nothing(tmp_path, row, message):
  manual = tmp_path / "manual"
  write_urban_sed(str(manual))
  path = manual / "annotations" / "test" / "soundscape_test_a.txt"
  path.write_text(f"0.000\t0.200\tdog_bark\n\n{row}\n")  # The bad row is line 3.
  with pytest.raises(ValueError, match=message) as error:
    prepare(tmp_path, manual)
  assert f"{path}:3:" in str(error.value)
  assert_nothing_written(tmp_path)


def test_corrupt_audio_fails_naming_the_file_and_writes_nothing(tmp_path):
  manual = tmp_path / "manual"
  write_urban_sed(str(manual))
  bad = manual / "audio" / "validate" / "soundscape_validate_a.wav"
  bad.write_bytes(b"RIFF\x00\x00not really a wave file")
  with pytest.raises(data.AudioError, match="soundscape_validate_a.wav"):
    prepare(tmp_path, manual)
  assert_nothing_written(tmp_path)
