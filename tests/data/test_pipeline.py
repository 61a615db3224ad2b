"""Datasets: synthetic generation, digits, the FSDKaggle2018 manual layout, bad audio, batching."""

import csv
import os

import numpy as np
import pytest
import soundfile

from soundjax import data
from soundjax.data.builders import fsd_kaggle2018
from soundjax.data.synthetic import events as synthetic


def test_synth_events_is_deterministic_balanced_and_clean(tiny_data_dir, tiny_synth_settings,
                                                          tmp_path):
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  again = data.prepare("synth_events", data_dir=str(tmp_path), **tiny_synth_settings)
  train, train_again = data.arrays(builder, "train"), data.arrays(again, "train")
  np.testing.assert_array_equal(train["x"], train_again["x"])
  assert train["x"].shape == (48, 2000) and train["x"].dtype == np.float32
  assert np.all(np.isfinite(train["x"])) and np.max(np.abs(train["x"])) <= 1.0
  assert np.all(np.bincount(train["y"]) == 48 // len(synthetic.CLASS_NAMES))
  assert data.num_classes(builder) == len(synthetic.CLASS_NAMES) >= 10


def test_synth_events_seed_changes_the_clips(tmp_path):
  one = synthetic.synth_event(np.random.default_rng([0, 0, 0]), 3, sample_rate=8000,
                              num_samples=800)
  other = synthetic.synth_event(np.random.default_rng([1, 0, 0]), 3, sample_rate=8000,
                                num_samples=800)
  assert not np.allclose(one, other)


@pytest.mark.parametrize("label", range(len(synthetic.CLASS_NAMES)))
def test_every_sound_class_makes_a_finite_audible_clip(label):
  clip = synthetic.synth_event(np.random.default_rng(label), label, sample_rate=16000,
                               num_samples=4000)
  assert clip.shape == (4000,) and np.all(np.isfinite(clip))
  assert 0.05 < np.max(np.abs(clip)) <= 1.0


def test_synth_events_rejects_bad_settings(tmp_path):
  with pytest.raises(ValueError, match="sample_rate"):
    data.prepare("synth_events", data_dir=str(tmp_path), sample_rate=0)
  with pytest.raises(ValueError, match="dataset must be one of"):
    data.prepare("nope", data_dir=str(tmp_path))


def test_digits_builds_from_scikit_learn(tmp_path):
  builder = data.prepare("digits", data_dir=str(tmp_path))
  train, test = data.arrays(builder, "train"), data.arrays(builder, "test")
  assert len(train["y"]) + len(test["y"]) == 1797
  assert test["x"].shape[1:] == (8, 8)
  assert 0.0 <= test["x"].min() and test["x"].max() <= 1.0
  assert set(np.unique(test["y"])) == set(range(10))


def test_batches_shuffle_each_epoch_and_are_random_access(tiny_data_dir, tiny_synth_settings):
  builder = data.prepare("synth_events", data_dir=tiny_data_dir, **tiny_synth_settings)
  stream = data.batches(builder, "train", batch_size=48, seed=3, shuffle=True, num_epochs=None)
  first, second = stream[0], stream[1]
  assert sorted(first["y"]) == sorted(second["y"])  # One batch is one whole epoch here.
  assert not np.array_equal(first["y"], second["y"])
  np.testing.assert_array_equal(stream[1]["x"], second["x"])
  assert data.batches(builder, "test", batch_size=10)[2]["x"].shape == (4, 2000)


def test_fit_length_pads_and_cuts():
  np.testing.assert_array_equal(data.fit_length(np.ones(3), 5), [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(data.fit_length(np.arange(5.0), 2), [0, 1])


@pytest.mark.parametrize("bad, message", [
    (np.array([0.1, np.nan, 0.2]), "1 NaN/Inf"),
    (np.array([np.inf]), "NaN/Inf"),
    (np.zeros(0), "empty"),
    (np.zeros((2, 3)), "mono"),
])
def test_check_waveform_names_the_problem_and_the_source(bad, message):
  with pytest.raises(data.AudioError, match=message) as error:
    data.check_waveform(bad, "clip.wav")
  assert "clip.wav" in str(error.value)


def _write_fsd_layout(root, *, train_files, test_files):
  """Writes FSDKaggle2018's manual-download layout with tiny 44.1 kHz clips."""
  meta = os.path.join(root, "FSDKaggle2018.meta")
  os.makedirs(meta)
  rng = np.random.default_rng(0)
  for folder, files, csv_name, extra in (
      (fsd_kaggle2018.TRAIN_AUDIO, train_files, fsd_kaggle2018.TRAIN_CSV, "manually_verified"),
      (fsd_kaggle2018.TEST_AUDIO, test_files, fsd_kaggle2018.TEST_CSV, "usage")):
    os.makedirs(os.path.join(root, folder))
    with open(os.path.join(root, csv_name), "w", newline="") as file:
      writer = csv.writer(file)
      writer.writerow(["fname", "label", extra])
      for index, (name, label) in enumerate(files):
        writer.writerow([name, label, "1" if index % 2 == 0 else "0"])
        soundfile.write(os.path.join(root, folder, name),
                        0.1 * rng.standard_normal(4410 * (index + 1)), 44100)


def test_fsd_kaggle2018_reads_the_manual_layout(tmp_path):
  manual = str(tmp_path / "manual")
  _write_fsd_layout(manual, train_files=[("a.wav", "Bark"), ("b.wav", "Writing"),
                                         ("c.wav", "Cello")],
                    test_files=[("t.wav", "Meow")])
  builder = data.prepare("fsd_kaggle2018", data_dir=str(tmp_path / "tfds"), manual_dir=manual,
                         sample_rate=8000)
  assert data.num_classes(builder) == 41
  records = sorted((len(r["audio"]), int(r["label"]), bool(r["manually_verified"]))
                   for r in data.split_source(builder, "train"))
  names = fsd_kaggle2018.LABELS
  assert records == [(800, names.index("Bark"), True), (1600, names.index("Writing"), False),
                     (2400, names.index("Cello"), True)]
  batch = data.batches(builder, "train", batch_size=3, num_samples=1000)[0]
  assert batch["x"].shape == (3, 1000)


def test_fsd_kaggle2018_without_files_says_what_to_put_where(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "placeholder.txt").write_text("not the dataset")
  with pytest.raises(FileNotFoundError) as error:
    data.prepare("fsd_kaggle2018", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  assert "FSDKaggle2018.audio_train" in str(error.value) and str(manual) in str(error.value)
  assert "train_post_competition.csv" in str(error.value)


def test_fsd_kaggle2018_without_a_manual_folder_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="fsd_kaggle2018"):
    data.prepare("fsd_kaggle2018", data_dir=str(tmp_path / "tfds"),
                 manual_dir=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("corruption", ["garbage", "nan", "empty"])
def test_fsd_kaggle2018_bad_clip_fails_naming_it_and_leaves_nothing(tmp_path, corruption):
  manual = str(tmp_path / "manual")
  _write_fsd_layout(manual, train_files=[("good.wav", "Bark"), ("bad.wav", "Bark")],
                    test_files=[("t.wav", "Meow")])
  bad = os.path.join(manual, fsd_kaggle2018.TRAIN_AUDIO, "bad.wav")
  if corruption == "garbage":
    with open(bad, "wb") as file:
      file.write(b"RIFF\x00\x00not really a wave file")
  else:
    samples = np.array([0.0, np.nan, 0.1]) if corruption == "nan" else np.zeros(0)
    soundfile.write(bad, samples, 44100, subtype="FLOAT")
  data_dir = str(tmp_path / "tfds")
  with pytest.raises(data.AudioError, match="bad.wav"):
    data.prepare("fsd_kaggle2018", data_dir=data_dir, manual_dir=manual, sample_rate=8000)
  builder_cls, make_config = data.builders.BUILDERS["fsd_kaggle2018"]
  builder = builder_cls(data_dir=data_dir, config=make_config(sample_rate=8000),
                        file_format="array_record")
  assert not builder.is_prepared()


def test_batches_read_another_label_and_leave_out_excluded_records(tmp_path):
  builder = data.prepare("synth_vocal_percussion", data_dir=str(tmp_path), num_users=3,
                         utterances_per_instrument=1, test_utterances=2, seed=0)
  source = data.split_source(builder, "train")
  records = [source[i] for i in range(len(source))]
  kept = [r for r in records if int(r["user"]) != 1]
  batch = data.arrays(builder, "train", label="syllable", exclude={"user": [1]})
  np.testing.assert_array_equal(batch["y"], [int(r["syllable"]) for r in kept])
  np.testing.assert_array_equal(batch["x"], np.stack([r["audio"] for r in kept]))
  assert data.num_classes(builder, "syllable") == \
      builder.info.features["syllable"].num_classes != data.num_classes(builder)
  with pytest.raises(ValueError, match="no class label 'syllabel'.*did you mean 'syllable'"):
    data.arrays(builder, "train", label="syllabel")
  with pytest.raises(ValueError, match="leaves no record"):
    data.arrays(builder, "train", exclude={"user": [0, 1, 2]})
