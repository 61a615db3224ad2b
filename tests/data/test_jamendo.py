"""The Jamendo builder on a tiny corpus in the published layout, and its excerpt view."""

import json
import os

import numpy as np
import pytest
import soundfile

from configs import occlusion as occlusion_config
from soundjax import data
from soundjax.data import excerpts
from soundjax.data.builders import jamendo
from soundjax.experiments import occlusion
from soundjax.metrics import frame_detection

RATE = 22050
SONGS = {"train": ["a.ogg", "b.wav"], "valid": ["c.wav"], "test": ["d.wav"]}


def write_jamendo(root, seconds=2.5, songs=SONGS):
  """The manual layout: audio/, labels/ ("start end sing|nosing") and filelists/{split}."""
  for folder in ("audio", "labels", "filelists"):
    os.makedirs(os.path.join(root, folder), exist_ok=True)
  t = np.arange(int(seconds * RATE)) / RATE
  for split, names in songs.items():
    with open(os.path.join(root, "filelists", split), "w") as file:
      file.write("\n".join(names) + "\n")
    for index, name in enumerate(names):
      tone = 0.3 * np.sin(2 * np.pi * (440.0 * (index + 1)) * t)
      soundfile.write(os.path.join(root, "audio", name), tone.astype(np.float32), RATE)
      with open(os.path.join(root, "labels", name.rsplit(".", 1)[0] + ".lab"), "w") as file:
        file.write(f"0 1.0 nosing\n1.0 2.0 sing\n2.0 {seconds} nosing\n")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  """`(data_dir, manual_dir)` of the tiny corpus."""
  root = tmp_path_factory.mktemp("jamendo")
  write_jamendo(str(root / "manual"))
  return str(root / "tfds"), str(root / "manual")


@pytest.fixture(scope="module")
def builder(dirs):
  return data.prepare("jamendo", data_dir=dirs[0], manual_dir=dirs[1])


def test_songs_have_published_features_and_frame_labels(builder):
  records = {r["song"].decode(): r for r in data.split_source(builder, "train")}
  assert sorted(records) == ["a.ogg", "b.wav"]
  song = records["b.wav"]  # A 880 Hz tone.
  frames = (int(2.5 * RATE) - 1024) // 315 + 1
  assert song["features"].shape == (frames, 80) and song["features"].dtype == np.float32
  times = np.arange(frames) / 70.0
  np.testing.assert_array_equal(song["labels"], (times >= 1.0) & (times < 2.0))
  # The loudest band is the one whose triangle peaks nearest 880 Hz.
  filterbank = jamendo.mel_filterbank(builder.builder_config)
  np.testing.assert_allclose(filterbank.sum(0), 1.0, rtol=1e-6)
  peak_bins = np.argmax(filterbank, axis=0) * RATE / 1024
  loudest = np.argmax(song["features"].mean(0))
  assert abs(peak_bins[loudest] - 880) <= RATE / 1024


def test_excerpts_are_centred_normalised_and_labelled_by_the_centre(builder):
  view = excerpts.Excerpts(builder, length=115, pad_value=np.log(jamendo.LOG_FLOOR),
                           class_names=("nosing", "sing"))
  train = view.as_data_source("train")
  songs = sorted((r for r in data.split_source(builder, "train")), key=lambda r: r["song"])
  assert len(train) == sum(len(s["labels"]) for s in songs)
  second = len(songs[0]["labels"]) + 40  # Frame 40 of the second song.
  excerpt = train[second]
  assert excerpt["excerpt"].shape == (115, 80)
  np.testing.assert_allclose(excerpt["excerpt"][57],
                             (songs[1]["features"][40] - view.mean) / view.std, rtol=1e-5)
  assert excerpt["label"] == songs[1]["labels"][40]
  centres = np.stack([train[i]["excerpt"][57] for i in range(len(train))])
  np.testing.assert_allclose(centres.mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(centres.std(0), 1.0, rtol=1e-3)
  indices, recording = view.as_data_source("test").blocks(50)
  assert len(indices) == 50 and np.all(np.diff(indices) == 1) and np.all(recording == 0)
  assert data.num_classes(view) == 2
  batch = data.batches(view, "valid", batch_size=4)[0]
  assert batch["x"].shape == (4, 115, 80) and batch["y"].dtype == np.int32


def test_missing_files_say_what_to_put_where(tmp_path):
  manual = tmp_path / "manual"
  (manual / "audio").mkdir(parents=True)
  with pytest.raises(FileNotFoundError) as error:
    data.prepare("jamendo", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
  message = str(error.value)
  assert str(manual) in message and "filelists/train" in message and ".lab" in message
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.prepare("jamendo", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "none"))


def test_bad_audio_fails_naming_the_file(tmp_path):
  manual = str(tmp_path / "manual")
  write_jamendo(manual, seconds=1.5)
  with open(os.path.join(manual, "audio", "c.wav"), "wb") as file:
    file.write(b"RIFF\x00\x00not a wave file")
  with pytest.raises(data.AudioError, match="c.wav"):
    data.prepare("jamendo", data_dir=str(tmp_path / "tfds"), manual_dir=manual)


def test_bad_label_line_names_file_and_line(tmp_path):
  manual = str(tmp_path / "manual")
  write_jamendo(manual, seconds=1.5)
  with open(os.path.join(manual, "labels", "d.lab"), "w") as file:
    file.write("0 1.0 nosing\n1.0 oops\n")
  with pytest.raises(ValueError, match=r"d.lab:2"):
    data.prepare("jamendo", data_dir=str(tmp_path / "tfds"), manual_dir=manual)


def test_occlusion_experiment_scores_detection_on_the_corpus(dirs, tmp_path):
  config = occlusion_config.get_config("jamendo")
  config.data_dir, config.manual_dir = dirs
  task = config.tasks.singing_voice
  task.model.kwargs = {"features": (4, 4, 4, 4), "hidden": (8, 8)}
  task.train.update(num_steps=2, batch_size=8, eval_batch_size=64, checkpoint_every=2)
  task.update(num_examples=40, median_frames=5)
  config.num_models = 1
  config.attribution.update(methods=("gradient", "random"), fractions=(0.5,),
                            replacements=("mean", "noise"), directions=("positive",),
                            curve_fractions=(0.0, 1.0), num_maps=1, example_batch_size=40,
                            cell_batch_size=None)
  occlusion.run(config, str(tmp_path))
  with open(tmp_path / "results.json") as file:
    results = json.load(file)["tasks"]["singing_voice"]
  assert results["metric"] == "f1" and results["num_examples"] == 40  # One test song.
  assert results["models"][0]["threshold"] in frame_detection.THRESHOLDS
  sweep = results["mean"]["methods"]["gradient"]["sweep"]
  for name in ("f1", "auroc", "error", "precision", "recall", "specificity", "loss_fell"):
    assert np.shape(sweep[name]) == (1, 2, 1)
  assert sorted(os.listdir(tmp_path / "figures")) == [
      "singing_voice_curves.png", "singing_voice_maps.png", "singing_voice_sweep.png"]
