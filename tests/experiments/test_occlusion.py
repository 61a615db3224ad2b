"""The occlusion experiment's wiring, outputs and config checks; the digits set-ups it uses."""

import glob
import json
import os
import types

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
from soundjax.experiments import occlusion, results_page
from soundjax.experiments.occlusion import checks as occlusion_checks
from soundjax.experiments.occlusion import evaluate, page
from soundjax.experiments.occlusion import report as occlusion_report
from tests.experiments import test_results_page
from tests.toys import TINY_SYNTH


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


@pytest.fixture(scope="module")
def occlusion_run(tiny_data_dir, tmp_path_factory):
  """One tiny run (2 models, 3 methods), shared by the output tests."""
  config = tiny_config(tiny_data_dir, dict(TINY_SYNTH))
  workdir = str(tmp_path_factory.mktemp("occlusion"))
  return config, workdir, occlusion.run(config, workdir)


def test_run_writes_every_cell_and_originals_match_the_trained_models(occlusion_run,
                                                                      tiny_synth_settings):
  config, workdir, _ = occlusion_run
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
    # (How beats_original is computed is checked on hand-made figures below.) A cell every model
    # wins on has a winning mean, and one no model wins on has not.
    beats = np.asarray(task["beats_original"][method])
    count = np.asarray(task["models_beating"][method])
    assert beats.shape == count.shape == cells and beats.dtype == bool
    assert np.all((0 <= count) & (count <= task["num_models"]))
    assert np.all(beats[count == task["num_models"]]) and not np.any(beats[count == 0])
  assert task["num_cells"] == len(settings.methods) * np.prod(cells)
  assert 0 <= task["num_cells_beating"] <= task["num_cells"]
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


def _numpy_loss(params, x, y):
  logits = np.asarray(params, np.float64) @ np.ravel(x)
  return np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[y]


def _occlude_by_hand(x, a, count, fill, direction="positive", reveal=False):
  """Replaces the `count` cells of highest (positive) or lowest (negative) attribution, earlier
  flat index first among ties; `reveal` keeps only those cells instead."""
  flat = np.ravel(a)
  order = np.argsort(-flat if direction == "positive" else flat, kind="stable")
  chosen = np.zeros(flat.size, bool)
  chosen[order[:count]] = True
  chosen = chosen.reshape(x.shape) != reveal
  return np.where(chosen, fill, x)


def test_evaluator_cells_equal_occlusion_by_hand():
  rng = np.random.default_rng(0)
  params = jnp.asarray(rng.standard_normal((3, 20)), jnp.float32)
  xs = rng.standard_normal((2, 4, 5)).astype(np.float32)
  ys = np.array([0, 2], np.int32)
  keys = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(3), 2)))
  settings = occlusion_config.get_config("quick").attribution
  settings.update(fractions=(0.3, 0.99), curve_fractions=(0.0, 0.5, 1.0), cell_batch_size=5)
  assert tuple(settings.replacements) == occlusion_config.REPLACEMENTS
  assert tuple(settings.directions) == ("positive", "negative")
  assert settings.curve_replacement == "mean"
  statistics = {"mean": 0.1, "std": 0.9, "min": -2.5, "max": 2.0}
  method = attribution.smoothgrad(attribution.gradient(linear_loss), stddev=0.5, num_samples=3)
  out = evaluate.make_evaluator(method, linear_loss, linear_logits, settings,
                                 statistics)(params, xs, ys, keys)
  counts = (6, 20)  # round(0.3 * 20), round(0.99 * 20)
  for i in range(2):
    x = xs[i]
    # The documented key split: the attribution's key, then one per replacement.
    method_key, *fill_keys = jax.random.split(jax.random.wrap_key_data(keys[i]), 6)
    a = np.asarray(method(params, x, ys[i], method_key))
    np.testing.assert_allclose(out["attribution"][i], a, rtol=1e-5, atol=1e-7)
    fills = [0.1, -2.5, 3 * x.min(), x.max(),  # mean, dataset_min, example_min, example_max
             0.1 + 0.9 * np.asarray(jax.random.normal(fill_keys[4], x.shape))]  # noise
    for d, direction in enumerate(("positive", "negative")):
      for r, fill in enumerate(fills):
        for f, count in enumerate(counts):
          occluded = _occlude_by_hand(x, a, count, fill, direction)
          np.testing.assert_allclose(out["sweep"]["loss"][i, d, r, f],
                                     _numpy_loss(params, occluded, ys[i]), rtol=1e-4,
                                     atol=1e-6, err_msg=str((i, direction, r, count)))
    np.testing.assert_allclose(out["sweep"]["loss_original"][i], _numpy_loss(params, x, ys[i]),
                               rtol=1e-4, atol=1e-6)
    # Curves: row 0 deletes, row 1 reveals the top cells, at fractions 0, 0.5 and 1.
    for c, reveal in enumerate((False, True)):
      for f, count in enumerate((0, 10, 20)):
        want = np.asarray(params, np.float64) @ np.ravel(
            _occlude_by_hand(x, a, count, 0.1, reveal=reveal))
        np.testing.assert_allclose(out["curves"]["logits"][i, c, f], want, rtol=1e-4,
                                   atol=1e-5)


def _logit(p):
  p = np.asarray(p, np.float64)
  return np.log(p / (1 - p))


def test_detection_scorer_filters_each_song_then_scores():
  config = ml_collections.ConfigDict({"metric": "detection", "median_frames": 3,
                                      "loss": "sigmoid_binary_cross_entropy"})
  recording = np.array([0] * 6 + [1] * 5)
  labels = np.array([1, 1, 0, 0, 0, 1] + [0, 0, 0, 1, 1])
  examples = evaluate.Examples(np.zeros((11, 2)), labels, recording)
  probabilities = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7] + [0.1, 0.2, 0.9, 0.3, 0.6])
  # Cell 0 scores 0.5 everywhere; cell 1 the probabilities above.
  logits = np.stack([np.zeros(11), _logit(probabilities)], axis=1)[..., None]
  scores = evaluate.scorer(config, examples, threshold=0.4)(logits)
  assert scores["f1"].shape == (2,)
  # Cell 1, filtered by hand within each song (3 frames, ends repeated):
  #   song 0 [0.9 0.8 0.2 0.3 0.3 0.7], song 1 [0.1 0.2 0.3 0.6 0.6]: every frame right at 0.4.
  # Unfiltered, 4 of 11 frames are wrong (F1 0.6); filtered across the song boundary, frame 5
  # would be median(0.3, 0.7, 0.1) = 0.3, a miss (F1 8/9).
  assert scores["f1"][1] == pytest.approx(1.0)
  assert scores["auroc"][1] == pytest.approx(1.0)
  assert scores["error"][1] == pytest.approx(0.0)
  # Cell 0: every frame positive: 5 hits, 6 false alarms.
  assert scores["precision"][0] == pytest.approx(5 / 11)
  assert scores["recall"][0] == pytest.approx(1.0)
  assert scores["f1"][0] == pytest.approx(2 * 5 / 16)
  assert scores["specificity"][0] == pytest.approx(0.0)
  assert scores["auroc"][0] == pytest.approx(0.5)  # all ties


def test_task_results_and_table_on_hand_computed_figures():
  config = occlusion_config.get_config("quick")
  config.attribution.update(methods=("gradient",), directions=("positive",),
                            replacements=("mean",), fractions=(0.25, 0.5, 0.75),
                            curve_fractions=(0.0, 1.0))
  task = config.tasks.sound.copy_and_resolve_references()
  task.attribution = config.attribution
  prepared = types.SimpleNamespace(test=evaluate.Examples(np.zeros((4, 2)), np.arange(4)),
                                   statistics={"mean": 0.0})

  def model(seed, original, cells, fell, areas):
    method = {"sweep": {"accuracy": np.array([[cells]]), "loss_fell": np.array([[fell]])},
              "curves": {"accuracy": np.array([[1.0, 0.0], [0.0, 1.0]])},
              "areas": {"accuracy": np.array(areas)}}
    return {"seed": seed, "test_accuracy": original, "threshold": None,
            "original": {"accuracy": original}, "methods": {"gradient": method}}

  per_model = [model(0, 0.5, [0.75, 0.25, 0.5625], [0.5, 0.0, 0.0], [0.5, 0.5]),
               model(1, 0.75, [0.625, 1.0, 0.4375], [0.25, 1.0, 0.5], [0.25, 0.75])]
  results = occlusion_report.task_results(task, prepared, per_model, {"total": 1.0})
  mean, std = results["mean"], results["std"]
  assert results["metric"] == "accuracy" and results["num_models"] == 2
  assert mean["original"]["accuracy"] == 0.625
  assert std["original"]["accuracy"] == pytest.approx(0.25 / np.sqrt(2))  # ddof 1
  np.testing.assert_allclose(mean["methods"]["gradient"]["sweep"]["accuracy"],
                             [[[0.6875, 0.625, 0.5]]])
  np.testing.assert_allclose(std["methods"]["gradient"]["sweep"]["accuracy"],
                             np.array([[[0.125, 0.75, 0.125]]]) / np.sqrt(2))
  # Cell 0's mean beats the mean original; cell 1's only ties it, though model 1 beats its own;
  # in cell 2 model 0 beats its own original (0.5625 > 0.5), but not the mean one.
  np.testing.assert_array_equal(results["beats_original"]["gradient"], [[[True, False, False]]])
  np.testing.assert_array_equal(results["models_beating"]["gradient"], [[[1, 1, 1]]])
  assert (results["num_cells_beating"], results["num_cells"]) == (1, 3)
  table = occlusion_report.markdown("sound", results)
  row = ("| grad (grad_orig) | mean | positive | **0.688 ± 0.088 (38%) ▲** | 0.625 ± 0.530 (50%) "
         "| 0.500 ± 0.088 (25%) |")
  assert row in table
  assert "**0.625 ± 0.177**" in table and "1 of 3 cells" in table
  assert "| grad (grad_orig) | 0.375 ± 0.177 | 0.625 ± 0.177 |" in table  # curve areas


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


def _expected_page(results):
  """The page's figures of the one task, computed here from results.json: the unoccluded
  accuracy, the best loss-gradient cell, and the cells (by their means) above the original."""
  task = results["tasks"]["sound"]
  original = task["mean"]["original"]["accuracy"]
  sweeps = {m: np.array(task["mean"]["methods"][m]["sweep"]["accuracy"])
            for m in task["axes"]["methods"]}
  gradient = np.concatenate([sweeps[m].ravel() for m in sweeps if m != "random"])
  return types.SimpleNamespace(original=original, best=gradient.max(),
                               share=np.mean(gradient > original),
                               control=np.mean(sweeps["random"] > original), sweeps=sweeps)


def _check_page(parsed, results):
  task, expected = results["tasks"]["sound"], _expected_page(results)
  findings = parsed.findings
  value, spread, _, _ = findings["sound (sound), accuracy of the unoccluded inputs"]
  assert value == round(expected.original, 3)
  assert spread == round(task["std"]["original"]["accuracy"], 3)
  assert findings["sound, best occluded accuracy of a loss-gradient method"][0] == round(
      expected.best, 3)
  assert findings["sound, share of loss-gradient cells beating the original"][0] == round(
      expected.share, 3)
  assert findings["sound, share of control cells beating the original"][0] == round(
      expected.control, 3)
  assert parsed.outcome == (results_page.REPRODUCES if expected.best > expected.original
                            else results_page.DOES_NOT)
  rows = {row[1]: row for row in parsed.rows if row[0] == "sound"}
  for method, sweep in expected.sweeps.items():
    row = rows[occlusion_report.LABELS[method]]
    assert row[2].startswith(f"{expected.original:.3f} ± ")
    assert row[3].startswith(f"{sweep.max():.3f} ± ")
    assert row[5] == f"{np.sum(sweep > expected.original)} of {sweep.size}"


def test_results_page_prints_the_figures_of_results_json(occlusion_run, tmp_path):
  _, workdir, _ = occlusion_run
  parsed, text, results = test_results_page.write_and_parse(page, "occlusion", workdir,
                                                            str(tmp_path / "docs"))
  _check_page(parsed, results)
  assert text.count("sweep.png") == text.count("curves.png") == 1
  test_results_page.assert_report_opens_with_findings(page, workdir, "summary.md")

  def shift(by):
    def edit(results):
      task = results["tasks"]["sound"]
      original = task["mean"]["original"]["accuracy"]
      for method, entry in task["mean"]["methods"].items():
        entry["sweep"]["accuracy"] = (np.array(entry["sweep"]["accuracy"]) + by).tolist()
        task["beats_original"][method] = (np.array(entry["sweep"]["accuracy"])
                                          > original).tolist()
    return edit

  test_results_page.assert_outcomes(page, "occlusion", workdir, tmp_path, [
      (shift(2.0), results_page.REPRODUCES), (shift(-2.0), results_page.DOES_NOT)], _check_page)


def _task(domain, original, sweeps, dataset="d"):
  """Hand-made results of one task: `sweeps` maps methods to their means at fractions 0.1, 0.5
  (one direction, one replacement)."""
  sweeps = {m: np.asarray(v, np.float64).reshape(1, 1, -1) for m, v in sweeps.items()}
  zeros = {m: {"sweep": {"accuracy": np.zeros_like(v)}} for m, v in sweeps.items()}
  return {"dataset": dataset, "domain": domain, "metric": "accuracy", "num_models": 2,
          "num_examples": 10,
          "axes": {"methods": list(sweeps), "directions": ["positive"],
                   "replacements": ["mean"], "fractions": [0.1, 0.5]},
          "mean": {"original": {"accuracy": original},
                   "methods": {m: {"sweep": {"accuracy": v}} for m, v in sweeps.items()}},
          "std": {"original": {"accuracy": 0.0}, "methods": zeros},
          "beats_original": {m: v > original for m, v in sweeps.items()},
          "models_beating": {m: 2 * (v > original) for m, v in sweeps.items()}}


@pytest.mark.parametrize("sound, image, outcome", [
    ([0.9, 0.7], [0.6, 0.95], results_page.REPRODUCES),
    ([0.9, 0.7], [0.6, 0.8], results_page.PARTLY),
    ([0.7, 0.8], [0.6, 0.95], results_page.PARTLY),
    ([0.7, 0.8], [0.6, 0.8], results_page.DOES_NOT),
])
def test_verdict_asks_for_a_winning_loss_gradient_cell_in_each_domain(sound, image, outcome):
  # Original 0.8 (sound) and 0.9 (image); the random control wins everywhere and counts for
  # nothing.
  results = {"tasks": {"sound": _task("sound", 0.8, {"gradient": sound, "random": [1.0, 1.0]}),
                       "digits": _task("image", 0.9, {"abs_gradient": image,
                                                      "random": [1.0, 1.0]})}}
  verdict = page.verdict(results)
  assert verdict.outcome == outcome
  assert ("on sound, 1 loss-gradient cell(s) beat" in verdict.sentence) == (max(sound) > 0.8)
  assert ("on image, 1 loss-gradient cell(s) beat" in verdict.sentence) == (max(image) > 0.9)


def test_verdict_on_one_domain_or_without_gradient_methods():
  one = {"tasks": {"sound": _task("sound", 0.8, {"gradient": [0.9, 0.7]})}}
  assert page.verdict(one).outcome == results_page.REPRODUCES
  assert "image" not in page.verdict(one).sentence
  control = {"tasks": {"sound": _task("sound", 0.8, {"random": [0.9, 0.7]})}}
  assert page.verdict(control).outcome == results_page.NOT_JUDGED
