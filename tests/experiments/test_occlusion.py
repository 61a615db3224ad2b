"""The occlusion experiment's wiring, outputs and config checks; the digits set-ups it uses."""

import glob
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from ml_collections.config_flags import config_path

from configs import common
from configs import occlusion as occlusion_config
from soundjax import attribution, data
from soundjax.checks import ConfigError
from soundjax.experiments import occlusion
from soundjax.experiments.occlusion import checks as occlusion_checks
from soundjax.experiments.occlusion import evaluate
from soundjax.metrics import frame_detection


def tiny_config(data_dir, settings):
  config = occlusion_config.get_config("quick")
  config.data_dir = data_dir
  sound = config.tasks.sound
  sound.data.settings = settings
  sound.frontend = common.frontend_config(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16)
  sound.model.kwargs = {"channels": (4,)}
  sound.train.update(num_steps=2, batch_size=8, eval_batch_size=16, checkpoint_every=2)
  config.tasks = ml_collections.ConfigDict({"sound": sound})
  config.attribution.update(methods=("abs_gradient", "integrated_gradients", "random"),
                            fractions=(0.5, 0.99), ig_steps=2, smoothgrad_samples=2,
                            example_batch_size=16, cell_batch_size=4,
                            curve_fractions=(0.0, 0.5, 1.0), num_maps=2)
  return config


def test_run_writes_every_cell_and_originals_match_the_trained_models(
    tiny_data_dir, tiny_synth_settings, tmp_path):
  workdir = str(tmp_path)
  config = tiny_config(tiny_data_dir, tiny_synth_settings)
  occlusion.run(config, workdir)
  with open(os.path.join(workdir, "results.json")) as file:
    task = json.load(file)["tasks"]["sound"]
  settings = config.attribution
  cells = (len(settings.directions), len(settings.replacements), len(settings.fractions))
  assert task["num_examples"] == tiny_synth_settings["num_test"] and task["num_models"] == 2
  for method in settings.methods:
    sweep = task["mean"]["methods"][method]["sweep"]
    for name in ("accuracy", "accuracy_difference", "loss_fell", "loss_difference"):
      assert np.shape(sweep[name]) == cells
    assert np.shape(task["mean"]["methods"][method]["curves"]["accuracy"]) == (2, 3)
    assert np.array_equal(task["beats_original"][method],
                          np.asarray(sweep["accuracy"]) > task["mean"]["original"]["accuracy"])
  # Every test clip is swept, so the originals' accuracy is the trained model's test accuracy.
  for model, figures in zip(task["models"], task["per_model"]):
    assert figures["original"]["accuracy"] == pytest.approx(model["test_accuracy"])
  assert [m["seed"] for m in task["models"]] == [0, 1]
  with open(os.path.join(workdir, "summary.md")) as file:
    summary = file.read()
  assert summary.count("\n| IG | ") == cells[0] * cells[1] + 1  # Sweep rows and the areas row.
  assert sorted(os.listdir(os.path.join(workdir, "figures"))) == [
      "sound_curves.png", "sound_maps.png", "sound_sweep.png"]
  assert os.path.isdir(os.path.join(workdir, "sound", "model_1", "checkpoints"))


def linear_logits(params, x):
  return params @ jnp.ravel(x)


def linear_loss(params, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(linear_logits(params, x), y)


def test_evaluator_cells_equal_a_direct_occlude_loop():
  rng = np.random.default_rng(0)
  params = jnp.asarray(rng.standard_normal((3, 20)), jnp.float32)
  xs = rng.standard_normal((2, 4, 5)).astype(np.float32)
  ys = np.array([0, 2], np.int32)
  keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(3), 2)))
  settings = occlusion_config.get_config("quick").attribution
  settings.update(fractions=(0.3, 0.99), curve_fractions=(0.0, 0.5, 1.0), cell_batch_size=5)
  statistics = {"mean": 0.1, "std": 0.9, "min": -2.5, "max": 2.0}
  method = attribution.smoothgrad(attribution.gradient(linear_loss), stddev=0.5, num_samples=3)
  out = evaluate.make_evaluator(method, linear_loss, linear_logits, settings,
                                 statistics)(params, xs, ys, keys)
  replacements = [evaluate.make_replacement(n, statistics) for n in settings.replacements]
  for i in range(2):
    method_key, *fill_keys = jax.random.split(jax.random.wrap_key_data(keys[i]),
                                              1 + len(replacements))
    a = method(params, xs[i], ys[i], method_key)
    for d, r, f in [(0, 0, 0), (1, 4, 1), (0, 3, 1)]:  # mean, noise (keyed), example_max
      occluded = attribution.occlude(xs[i], a, fraction=settings.fractions[f],
                                     replacement=replacements[r], key=fill_keys[r],
                                     direction=settings.directions[d])
      np.testing.assert_allclose(out["sweep"]["loss"][i, d, r, f],
                                 linear_loss(params, occluded, ys[i]), rtol=1e-5)
    half = attribution.occlude(xs[i], a, fraction=0.5, replacement=replacements[0])
    np.testing.assert_allclose(out["curves"]["logits"][i, 0, 1], linear_logits(params, half),
                               rtol=1e-5)
    np.testing.assert_allclose(out["attribution"][i], a, rtol=1e-5, atol=1e-7)


def test_detection_scorer_filters_each_song_then_scores():
  config = ml_collections.ConfigDict({"metric": "detection", "median_frames": 3,
                                      "loss": "sigmoid_binary_cross_entropy"})
  rng = np.random.default_rng(1)
  recording = np.array([0] * 6 + [1] * 5)
  examples = evaluate.Examples(np.zeros((11, 2)), rng.integers(0, 2, 11), recording)
  logits = rng.standard_normal((11, 2, 1))
  scores = evaluate.scorer(config, examples, threshold=0.4)(logits)
  probabilities = 1 / (1 + np.exp(-logits[:, 1, 0]))
  filtered = frame_detection.median_filter([probabilities[:6], probabilities[6:]], 3)
  expected = frame_detection.evaluate(np.concatenate(filtered), examples.y, 0.4)
  assert scores["f1"].shape == (2,)
  assert scores["f1"][1] == pytest.approx(expected["f1"])
  assert scores["auroc"][1] == pytest.approx(expected["auroc"])


@pytest.mark.parametrize("field, value, match", [
    ("attribution.fractions", (0.1, 1.5), "attribution.fractions"),
    ("attribution.methods", ("gradient", "lime"), "attribution.methods"),
    ("attribution.replacements", ("mean", "median"), "attribution.replacements"),
    ("attribution.curve_fractions", (0.5, 0.2), "attribution.curve_fractions"),
    ("attribution.cell_batch_size", 0, "attribution.cell_batch_size"),
    ("num_models", 0, "num_models"),
    ("tasks.sound.metric", "bleu", "tasks.sound.metric"),
    ("tasks.sound.model.name", "nope", "tasks.sound.model.name"),
])
def test_bad_config_values_raise_naming_the_field(tmp_path, field, value, match):
  config = occlusion_config.get_config("quick")
  config_path.set_value(field, config, value)
  with pytest.raises(ConfigError, match=match):
    occlusion.run(config, str(tmp_path))
  assert not os.listdir(tmp_path)


def test_every_checked_method_and_replacement_can_be_built():
  settings = occlusion_config.get_config("").attribution
  settings.methods = tuple(attribution.METHODS)
  statistics = {"mean": 0.1, "std": 0.9, "min": -2.5, "max": 2.0}
  methods = evaluate.make_methods(settings, linear_loss, statistics)
  assert tuple(methods) == tuple(attribution.METHODS) and all(map(callable, methods.values()))
  for name in occlusion_config.REPLACEMENTS:
    assert callable(evaluate.make_replacement(name, statistics))


def test_every_variant_passes_the_checks():
  for variant in ("", "quick", "jamendo", "mnist"):
    occlusion_checks.check_config(occlusion_config.get_config(variant))
  with pytest.raises(ValueError, match="variant"):
    occlusion_config.get_config("huge")


def test_digits_classes_are_relabelled_and_normalised(tmp_path):
  builder = data.prepare("digits", data_dir=str(tmp_path), classes=(1, 0), normalize=True)
  train, test = data.arrays(builder, "train"), data.arrays(builder, "test")
  assert builder.info.features["label"].names == ["1", "0"] and data.num_classes(builder) == 2
  assert len(train["y"]) + len(test["y"]) == 360  # 178 zeros and 182 ones in scikit-learn's set
  assert np.sum(np.concatenate([train["y"], test["y"]]) == 0) == 182  # "1" is class 0 now
  assert train["x"].min() < -0.5  # A black pixel is below the (all-digit) mean.


def _write_fake_mnist(data_dir):
  """A TFDS `mnist` folder in array_record format, as a user's prepared copy would be."""
  with tfds.core.registered.skip_registration():

    class Mnist(tfds.core.GeneratorBasedBuilder):  # pylint: disable=unused-variable
      VERSION = tfds.core.Version("3.0.1")

      def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(num_classes=10)}))

      def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12), "test": self._generate_examples(6)}

      def _generate_examples(self, size):
        for index in range(size):
          pixels = np.full((28, 28), 255 * (index % 2), np.uint8)
          yield index, {"image": PIL.Image.fromarray(pixels), "label": index % 3}

    Mnist(data_dir=data_dir, file_format="array_record").download_and_prepare()


def test_mnist_is_read_from_a_prepared_tfds_folder_or_explains_where_to_put_it(tmp_path):
  manual = str(tmp_path / "tfds_home")
  with pytest.raises(FileNotFoundError, match="mnist"):
    data.prepare("digits", data_dir=str(tmp_path / "data"), source="mnist", manual_dir=manual)
  _write_fake_mnist(manual)
  builder = data.prepare("digits", data_dir=str(tmp_path / "data"), source="mnist",
                         classes=(0, 1), normalize=True, manual_dir=manual)
  train = data.arrays(builder, "train")
  assert train["x"].shape == (8, 28, 28)  # Labels 0 and 1 of index % 3.
  np.testing.assert_allclose(np.unique(train["x"]), [-0.1307 / 0.3081, (1 - 0.1307) / 0.3081],
                             rtol=1e-5)


def test_mnist_in_another_file_format_is_refused_saying_how_to_convert_it(tmp_path):
  manual = str(tmp_path / "tfds_home")
  _write_fake_mnist(manual)
  (info_path,) = glob.glob(os.path.join(manual, "mnist", "*", "dataset_info.json"))
  with open(info_path) as file:
    info = json.load(file)
  with open(info_path, "w") as file:  # What a default (tfrecord) `download_and_prepare` writes.
    json.dump({**info, "fileFormat": "tfrecord"}, file)
  with pytest.raises(FileNotFoundError, match="stored as tfrecord, not array_record"):
    data.prepare("digits", data_dir=str(tmp_path / "data"), source="mnist", manual_dir=manual)
