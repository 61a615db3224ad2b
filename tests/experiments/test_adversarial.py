"""The adversarial experiment: end to end on tiny models, restoring, config errors, and the
success predicates, clip pairing, chunking and transfer rule it is built from.

One five-model run (module fixture) is shared by the output tests; everything else runs a
single model or no model at all, so that compile time stays small.
"""

import json
import os
import shutil
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tqdm

from configs import adversarial as adversarial_config
from soundjax import attacks, models, training
from soundjax.checks import ConfigError
from soundjax.experiments import adversarial, results_page
from soundjax.experiments.adversarial import builders, curves, evaluate, page, sanity, setup
from soundjax.metrics import classification
from tests.experiments import test_results_page
from tests.toys import TINY_SYNTH

NUM_EXAMPLES = 1


def tiny_config(data_dir, settings):
  """The quick variant shrunk to the tiny data set: 2 training steps, 4 clips, 2 attacks."""
  config = adversarial_config.get_config("quick")
  config.data.settings = settings
  config.data.data_dir = data_dir
  front = dict(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16)
  config.frontend.update(front)
  config.models.densenet_se.kwargs.update(front)
  config.models.waveform_cnn.kwargs.stem_kernel = 16
  for name in ("vgg", "gated_cnn", "crnn", "waveform_cnn"):
    config.models[name].kwargs.channels = (4, 8)
  config.train.update(num_steps=2, batch_size=8, eval_batch_size=24, checkpoint_every=2)
  config.clips.max_clips = 4
  config.attacks = {
      "fgsm": _attack_spec("fgsm_snr", snr_db=20.0),
      "cw_targeted": _attack_spec("carlini_wagner_l2", targeted=True, num_steps=2,
                                  binary_search_steps=1, learning_rate=1e-2),
  }
  config.main_attack = "fgsm"
  config.robustness.update(attack="fgsm", levels=(20.0, 10.0))
  config.num_examples = NUM_EXAMPLES
  return config


def _attack_spec(attack, targeted=False, per_class=None, **kwargs):
  return {"attack": attack, "targeted": targeted, "kwargs": kwargs, "per_class": per_class}


@pytest.fixture(scope="module")
def five_model_run(tiny_data_dir, tmp_path_factory):
  config = tiny_config(tiny_data_dir, dict(TINY_SYNTH))
  workdir = str(tmp_path_factory.mktemp("adversarial"))
  return config, workdir, adversarial.run(config, workdir)


def _in_unit_interval(value):
  return value is None or 0.0 <= value <= 1.0


def test_run_writes_every_output(five_model_run):
  config, workdir, _ = five_model_run
  names = ["results.json", "results.md", "summary.md", "transfer_matrix.png", "robustness.png"]
  names += [f"spectrograms_{model}.png" for model in config.models]
  for name in names:
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  wavs = sorted(os.listdir(os.path.join(workdir, "wav")))
  assert len(wavs) == 2 * NUM_EXAMPLES * len(config.models)
  assert sum(name.endswith("_adversarial.wav") for name in wavs) == len(wavs) // 2
  table = open(os.path.join(workdir, "results.md")).read()
  for model in config.models:
    assert f"| {model} | cw_targeted |" in table and f"| {model} | fgsm |" in table


def test_results_cover_every_model_and_attack_in_range(five_model_run):
  config, workdir, returned = five_model_run
  with open(os.path.join(workdir, "results.json")) as file:
    results = json.load(file)
  assert results["num_clips"] == 4 and len(results["labels"]) == 4
  assert set(results["attacks"]) == set(config.models)
  for model, per_attack in results["attacks"].items():
    assert set(per_attack) == {"fgsm", "cw_targeted"}
    for attack, figures in per_attack.items():
      for key, value in figures.items():
        if key.endswith(("_rate", "_before", "_after", "accuracy")):
          assert _in_unit_interval(value), (model, attack, key, value)
      assert (figures["p_target_after"] is None) == (attack == "fgsm")
      for key in ("linf_mean", "l2_mean"):
        assert figures[key] is None or figures[key] >= 0
    # Fixed-SNR FGSM flips most of these barely trained models; clipping only raises the SNR.
    fgsm = per_attack["fgsm"]
    assert fgsm["num_examples"] == 4
    assert fgsm["snr_db_median"] is None or fgsm["snr_db_median"] >= 20.0 - 1e-3
    assert per_attack["cw_targeted"]["num_examples"] == 4  # one (y + 1) % C target per clip
    assert all(_in_unit_interval(a) for a in results["robustness"]["accuracy"][model])
    assert len(results["robustness"]["accuracy"][model]) == 2
    # A one-step curve attack: (a) and (b) are made, (c) and (d) say why they cannot be.
    checks = results["robustness"]["sanity"]["models"][model]
    assert list(checks) == list(sanity.CHECKS)
    assert checks["monotone"]["passed"] in (True, False)
    assert checks["reaches_zero"]["accuracy"] == results["robustness"]["accuracy"][model][-1]
    assert checks["iterative_beats_one_step"]["passed"] is None
    assert "takes no steps" in checks["more_steps_change_little"]["reason"]
  assert "one_step" not in results["robustness"] and "double_steps" not in results["robustness"]
  matrix = results["transfer"]["matrix"]
  assert np.shape(matrix) == (5, 5)
  assert all(_in_unit_interval(v) for row in matrix for v in row)
  assert results["transfer"]["models"] == list(config.models)
  assert returned["attacks"] == results["attacks"]


def test_rerun_restores_models_without_training(five_model_run, tmp_path):
  config, workdir, first = five_model_run
  config = config.copy_and_resolve_references()
  config.models = {"vgg": config.models.vgg}
  # A copy of the run's model folder: re-running in the fixture's own workdir would overwrite
  # the five-model results.json that other tests read.
  model_dir = os.path.join(tmp_path, "models", "vgg")
  shutil.copytree(os.path.join(workdir, "models", "vgg"), model_dir)
  rows = training.read_metrics(model_dir)
  checkpoints = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
  again = adversarial.run(config, str(tmp_path))
  assert training.read_metrics(model_dir) == rows  # no training step was logged again
  assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == checkpoints
  assert again["models"]["vgg"] == first["models"]["vgg"]
  # FGSM is deterministic, so the restored model gives the same figures.
  for key, value in first["attacks"]["vgg"]["fgsm"].items():
    if key != "seconds":
      assert again["attacks"]["vgg"]["fgsm"][key] == pytest.approx(value), key


def test_auto_attack_adds_the_ensemble_and_its_diagnostics_to_the_robustness_table(
    five_model_run, tmp_path):
  config, workdir, first = five_model_run
  config = config.copy_and_resolve_references()
  config.models = {"vgg": config.models.vgg}
  config.attacks = {"fgsm": config.attacks.fgsm}
  config.robustness.levels = (10.0,)
  # At the curve's 10 dB SNR floor, inside a Linf ball of 0.05; tiny settings.
  config.auto_attack = {"enabled": True, "norm": "linf", "kwargs": dict(
      eps=0.05, num_steps=2, num_target_classes=1, num_queries=5, unroll=False)}
  shutil.copytree(os.path.join(workdir, "models", "vgg"),
                  os.path.join(tmp_path, "models", "vgg"))  # restored, not trained again
  results = adversarial.run(config, str(tmp_path))
  ensemble = results["robustness"]["auto_attack"]
  assert ensemble["components"] == list(attacks.ensemble.COMPONENTS)
  (figures,) = ensemble["figures"]["vgg"]  # one level
  # Its clean accuracy is the one the victims table computes from the clean probabilities.
  assert figures["clean"] == pytest.approx(first["models"]["vgg"]["clean_accuracy"])
  chain = [figures["clean"]] + [figures[name] for name in ensemble["components"]]
  assert chain == sorted(chain, reverse=True) and figures["robust"] == chain[-1]
  for key in ("grad_zero_share", "grad_nonfinite_share", "no_gain_share", "square_only"):
    assert _in_unit_interval(figures[key]), key
  assert figures["grad_nonfinite_share"] == 0
  assert figures["loss_gain"] is None or figures["loss_gain"] >= 0
  table = open(os.path.join(tmp_path, "results.md")).read()
  assert "AutoAttack robust accuracy" in table and "| vgg | 10 |" in table
  with open(os.path.join(tmp_path, "results.json")) as file:
    assert json.load(file)["robustness"]["auto_attack"]["figures"] == ensemble["figures"]


def test_pgd_curve_compiles_each_curve_once_and_checks_it_against_fgsm_and_twice_the_steps(
    five_model_run, tmp_path, monkeypatch):
  config, workdir, _ = five_model_run
  config = config.copy_and_resolve_references()
  config.models = {"vgg": config.models.vgg}
  config.attacks = {"pgd": _attack_spec("pgd", eps=0.002, step_size=0.0005, num_steps=1)}
  config.main_attack = "pgd"
  config.robustness.update(attack="pgd", levels=(40.0, 20.0, 0.0))
  config.robustness.kwargs = {"eps": 2.0}
  shutil.copytree(os.path.join(workdir, "models", "vgg"),
                  os.path.join(tmp_path, "models", "vgg"))  # restored, not trained again
  swept = []
  sweep = curves.sweep
  monkeypatch.setattr(curves, "sweep", lambda make: swept.append(sweep(make)) or swept[-1])
  results = adversarial.run(config, str(tmp_path))
  # PGD, FGSM and PGD with 2 steps: one compile each for the three levels.
  assert [f._cache_size() for f in swept] == [1, 1, 1]  # pylint: disable=protected-access
  curve = results["robustness"]
  assert curve["step"] == {"rule": "madry", "factor": 2.5, "num_steps": 1}
  assert curve["one_step"]["attack"] == "fgsm" and curve["double_steps"]["num_steps"] == 2
  pgd, fgsm, doubled = (np.array(c["vgg"], np.float64) for c in (
      curve["accuracy"], curve["one_step"]["accuracy"], curve["double_steps"]["accuracy"]))
  assert all(len(c) == 3 for c in (pgd, fgsm, doubled))
  # The verdicts' figures, recomputed from the curves (levels are SNRs: 0 dB is the largest).
  checks = curve["sanity"]["models"]["vgg"]
  assert checks["monotone"]["largest_rise"] == pytest.approx(max(np.max(np.diff(pgd)), 0.0))
  assert checks["reaches_zero"] == {"passed": bool(pgd[-1] <= 0.05), "accuracy": pgd[-1],
                                    "at": 0.0}
  assert checks["iterative_beats_one_step"]["largest_excess"] == pytest.approx(
      np.max(pgd - fgsm))
  assert checks["more_steps_change_little"]["largest_change"] == pytest.approx(
      np.max(np.abs(doubled - pgd)))
  assert all(check["passed"] in (True, False) for check in checks.values())
  table = open(os.path.join(tmp_path, "results.md")).read()
  for row in ("| vgg | pgd |", "| vgg | fgsm (one step) |", "| vgg | pgd (2 steps) |"):
    assert row in table
  assert "Sanity checks (Carlini et al., 2019" in table and "| model | monotone |" in table
  with open(os.path.join(tmp_path, "results.json")) as file:
    assert json.load(file)["robustness"]["sanity"] == curve["sanity"]


@pytest.mark.parametrize("variant", ["", "quick", "fsd_kaggle2018"])
def test_config_variants_are_valid(variant):
  config = adversarial_config.get_config(variant)
  setup.check_config(config)
  assert {models.input_kind(name) for name in config.models} == {"logmel", "waveform"}
  assert len(config.models) == 5


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.attacks.pgd.update(attack="pgdd"), "config.attacks.pgd.attack"),
    (lambda c: c.attacks.pgd.kwargs.update(eps=-0.1), "config.attacks.pgd.kwargs"),
    (lambda c: c.attacks.deepfool.update(targeted=True), "config.attacks.deepfool.targeted"),
    (lambda c: c.attacks.lbfgs_targeted.update(targeted=False),
     "config.attacks.lbfgs_targeted.targeted"),
    (lambda c: c.update(main_attack="cw_targeted"), "config.main_attack"),
    (lambda c: c.update(main_attack="nope"), "config.main_attack"),
    (lambda c: c.robustness.update(param="snr"), "config.robustness.param"),
    (lambda c: c.robustness.update(param="eps", levels=(0.01, -1.0)),
     "config.robustness.levels"),
    (lambda c: c.robustness.update(levels=(float("nan"),)), "config.robustness.levels"),
    (lambda c: c.robustness.kwargs.update(epsilon=1.0), "config.robustness.kwargs"),
    (lambda c: c.robustness.kwargs.update(num_steps=0), "config.robustness.kwargs"),
    (lambda c: c.robustness.update(step_rule="adam"), "config.robustness.step_rule"),
    (lambda c: c.robustness.update(step_factor=0.0), "config.robustness.step_factor"),
    (lambda c: c.robustness.sanity.update(zero_accuracy=1.5),
     "config.robustness.sanity.zero_accuracy"),
    (lambda c: c.robustness.sanity.update(tolerance=0.1), "config.robustness.sanity"),
    (lambda c: c.models.vgg.kwargs.update(channels=()), "config.models.vgg.kwargs"),
    (lambda c: c.models.densenet_se.kwargs.update(sample_rate=8000),
     "config.models.densenet_se.kwargs.sample_rate"),
    (lambda c: c.models.vgg.train.update(learning_rate=-1.0),
     "config.models.vgg.train.learning_rate"),
    (lambda c: c.frontend.update(sample_rate=8000), "config.frontend.sample_rate"),
    (lambda c: c.clips.update(per_class=0), "config.clips.per_class"),
    (lambda c: c.attacks.cw.update(per_class=0), "config.attacks.cw.per_class"),
    (lambda c: c.attacks.pgd.update(per_class=2), "config.main_attack"),
    (lambda c: c.update(loss="sigmoid_binary_cross_entropy"), "config.loss"),
    (lambda c: c.auto_attack.update(enabled=True, norm="l1"), "config.auto_attack"),
    (lambda c: (c.auto_attack.update(enabled=True), c.robustness.update(param="step_size")),
     "config.robustness.param"),
    (lambda c: (c.auto_attack.update(enabled=True), c.auto_attack.kwargs.update(num_steps=0)),
     "config.auto_attack"),
])
def test_config_errors_name_the_field(edit, field):
  config = adversarial_config.get_config("")
  edit(config)
  with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
    setup.check_config(config)


def test_the_madry_rule_refuses_an_attack_whose_step_it_cannot_set(monkeypatch):
  monkeypatch.setattr(builders, "STEERED", ("pgd", "bim"))  # as if MI-FGSM were new
  config = adversarial_config.get_config("")
  config.attacks.mi = _attack_spec("mi_fgsm", eps=0.002, step_size=0.0005, num_steps=2)
  config.robustness.attack = "mi"
  with pytest.raises(ConfigError, match=r"config\.robustness\.step_rule is 'madry'.*mi_fgsm"):
    setup.check_config(config)
  config.robustness.step_rule = "fixed"
  setup.check_config(config)


@pytest.mark.parametrize("name", ["digits_cnn", "crnn_sed"])  # an image model; a detector
def test_a_model_that_is_no_sound_classifier_raises(name):
  config = adversarial_config.get_config("")
  config.models[name] = {"kwargs": {}}
  with pytest.raises(ConfigError, match=rf"config\.models\.{name} is not a sound classifier"):
    setup.check_config(config)


def test_targets_resolve_by_name_or_index_and_pair_with_other_labels():
  names = ["a", "b", "c", "d"]
  assert setup.resolve_targets(("c", 0), names) == (2, 0)
  for bad in (("e",), (4,), ("a", 0)):
    with pytest.raises(ConfigError, match=r"config\.targets"):
      setup.resolve_targets(bad, names)
  labels = np.array([0, 2, 3])
  clip, target = setup.attack_pairs(labels, (), 4)
  np.testing.assert_array_equal(clip, [0, 1, 2])
  np.testing.assert_array_equal(target, [1, 3, 0])
  clip, target = setup.attack_pairs(labels, (0, 2), 4)
  np.testing.assert_array_equal(clip, [0, 1, 2, 2])  # each clip, every target but its label
  np.testing.assert_array_equal(target, [2, 0, 0, 2])


def test_first_per_class_keeps_the_first_clips_of_each_class_in_order():
  labels = np.array([3, 1, 3, 3, 0, 1, 0])
  np.testing.assert_array_equal(setup.first_per_class(labels, 1), [0, 1, 4])
  np.testing.assert_array_equal(setup.first_per_class(labels, 2), [0, 1, 2, 4, 5, 6])
  np.testing.assert_array_equal(setup.first_per_class(labels, None), np.arange(7))


def test_an_attack_with_per_class_runs_on_its_subset_only():
  """A linear victim: FGSM at 20 dB on the first clip of each class (clips 0, 1 and 3), the
  targeted attack on the first two of each class; the others on all six clips."""
  weights = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
  logits = lambda w, x: x @ w
  loss = lambda w, x, y: optax.softmax_cross_entropy_with_integer_labels(logits(w, x), y)
  task = types.SimpleNamespace(logits_fn=lambda: logits, loss_fn=lambda: loss)
  result = types.SimpleNamespace(task=task, state=types.SimpleNamespace(variables=weights))
  predict = lambda x: np.asarray(jax.nn.softmax(x @ weights))
  x = np.asarray(np.random.default_rng(1).uniform(-0.5, 0.5, (6, 16)), np.float32)
  y = np.array([0, 1, 0, 2, 1, 1])
  victim = evaluate.Victim("linear", result, predict, predict(x))
  config = adversarial_config.get_config("quick")
  config.attacks = {
      "noise": _attack_spec("white_noise", snr_db=20.0),
      "fgsm": _attack_spec("fgsm_snr", snr_db=20.0, per_class=1),
      "cw_targeted": _attack_spec("carlini_wagner_l2", targeted=True, num_steps=2,
                                  binary_search_steps=1, per_class=2)}
  config.main_attack = "noise"
  metrics, main = evaluate.attack_victim(config, victim, x, y, (), jax.random.key(0),
                                         tqdm.tqdm(disable=True))
  assert {a: m["num_examples"] for a, m in metrics.items()} == {
      "noise": 6, "fgsm": 3, "cw_targeted": 5}
  assert main.shape == x.shape
  first = [0, 1, 3]
  assert metrics["fgsm"]["clean_accuracy"] == np.mean(np.argmax(predict(x[first]), -1) == y[first])


def test_success_predicates_on_hand_computed_cases():
  probs = np.array([[0.7, 0.2, 0.1],     # right and sure
                    [0.34, 0.36, 0.3],   # fooled to 1, but p(true=0) = 0.34 is not < 1/3 ...
                    [0.2, 0.5, 0.3],     # ... here it is (0.2)
                    [0.1, 0.05, 0.85],   # fooled to 2, p(true=1) = 0.05
                    [0.98, 0.01, 0.01]])  # target 0 reached with p >= 0.975
  labels = np.array([0, 0, 0, 1, 2])
  np.testing.assert_array_equal(classification.untargeted_success(probs, labels),
                                [False, True, True, True, True])
  np.testing.assert_array_equal(classification.untargeted_success(probs, labels, 1 / 3),
                                [False, False, True, True, True])
  targets = np.array([0, 1, 2, 2, 0])
  np.testing.assert_array_equal(classification.targeted_success(probs, targets),
                                [True, True, False, True, True])
  np.testing.assert_array_equal(classification.targeted_success(probs, targets, 0.975),
                                [False, False, False, False, True])
  np.testing.assert_allclose(classification.class_probability(probs, targets),
                             [0.7, 0.36, 0.3, 0.85, 0.98])


def test_softmax_is_stable_and_matches_the_closed_form():
  logits = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)]])
  np.testing.assert_allclose(classification.softmax(logits), [[0.25, 0.75], [0.25, 0.75]],
                             rtol=1e-12)


def test_transfer_matrix_counts_only_clips_the_column_model_got_right():
  y = np.array([0, 1, 0, 1])
  one_hot = lambda classes: np.eye(2)[np.asarray(classes)]

  def victim(name, clean_pred, fooled_pred):
    # Predicts `fooled_pred` on adversarial clips (marked by a 1 in column 0), else `clean_pred`.
    predict = lambda x: one_hot(np.where(x[:, 0] > 0, fooled_pred, clean_pred))
    return evaluate.Victim(name=name, result=None, predict=predict,
                              clean_probs=one_hot(clean_pred))

  victims = [victim("right", [0, 1, 0, 1], [1, 1, 1, 1]),  # fooled on clips 0 and 2
             victim("wrong", [1, 0, 1, 0], [0, 1, 0, 1])]  # never right when clean
  adv = {v.name: np.ones((4, 3)) for v in victims}
  matrix = evaluate.transfer_matrix(victims, adv, y)
  assert matrix == [[0.5, None], [0.5, None]]


def test_attack_metrics_on_known_perturbations():
  x = np.ones((2, 8)) * np.array([[1.0], [2.0]])
  x_adv = x.copy()
  x_adv[:, 0] += 0.5
  clean = np.array([[0.9, 0.1], [0.2, 0.8]])
  adv = np.array([[0.3, 0.7], [0.1, 0.9]])
  figures = evaluate.attack_metrics(x, x_adv, np.array([0, 1]), None, clean, adv,
                                       targeted_confidence=0.975)
  assert figures["success_rate"] == 0.5 and figures["success_rate_clean_correct"] == 0.5
  assert figures["confident_success_rate"] == 0.5  # p(true) = 0.3 < 1/2
  assert figures["linf_mean"] == pytest.approx(0.5)
  assert figures["snr_db_mean"] == pytest.approx(10 * np.log10(1.0 / (0.25 / 8)), rel=1e-5)
  assert figures["p_true_before"] == pytest.approx(0.85)
  assert figures["p_true_after"] == pytest.approx(0.6)
  assert figures["p_adv_class_after"] == pytest.approx(0.8)


def _sign_ascent_reference(w, x, y, delta, num_steps, eps=0.1, step_size=0.03):
  """Linf sign-gradient ascent of cross-entropy on logits `(x + delta) @ w`, by hand in numpy."""
  w, x, delta = (np.asarray(a, np.float64) for a in (w, x, delta))
  delta = np.clip(delta, -eps, eps)
  for _ in range(num_steps):
    logits = (x + delta) @ w
    p = np.exp(logits - logits.max())
    p /= p.sum()
    grad = w @ (p - np.eye(w.shape[1])[y])  # d CE / d delta
    delta = np.clip(delta + step_size * np.sign(grad), -eps, eps)
  return x + delta


@pytest.mark.parametrize("num_steps", [1, 4])
def test_unrolled_attack_loop_equals_the_fori_loop_and_a_hand_written_one(num_steps):
  # `iterative` traces up to MAX_UNROLLED_STEPS steps straight (faster on XLA:CPU).
  loss_fn = lambda w, x, y: optax.softmax_cross_entropy_with_integer_labels(x @ w, y)
  init = attacks.init_uniform_linf(0.1)
  parts = dict(init=init, project=attacks.budget("linf", 0.1),
               step=optax.chain(optax.scale_by_sign(), optax.scale(0.03)), num_steps=num_steps)
  w = jnp.arange(12.0).reshape(4, 3) / 10 - 0.5
  x, key = jnp.array([0.3, -0.2, 0.1, 0.4]), jax.random.key(0)
  want = _sign_ascent_reference(w, x, 1, init(x, key), num_steps)
  for unroll in (True, False):
    got = jax.jit(attacks.iterative(loss_fn, unroll=unroll, **parts))(w, x, 1, key)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _rounded(value):
  return None if value is None else round(value, 3)


def _over_victims(values):
  """(mean, std) over victims of the defined values, as the page prints them, and the note."""
  defined = [v for v in values.values() if v is not None]
  note = "per victim " + ", ".join(f"{m} {'n/a' if v is None else f'{v:.3f}'}"
                                   for m, v in values.items())
  return _rounded(np.mean(defined)), _rounded(np.std(defined)), None, note


def _tables(rows):
  """The page's table rows grouped by their header row (a header's first cell is "model" or the
  transfer matrix's corner)."""
  tables, current = {}, None
  for row in rows:
    if row[0] in ("model", "crafted on \\ scored on"):
      current = tables.setdefault(tuple(row), [])
    else:
      current.append(row)
  return tables


def _check_page(parsed, results):
  """Every figure on the page against results.json: the findings, the victims, attack, curve and
  transfer tables."""
  attack = results["transfer"]["attack"]
  main = {m: per_attack[attack] for m, per_attack in results["attacks"].items()}
  share = {m: f["confident_success_rate"] / f["success_rate"] if f["success_rate"] else None
           for m, f in main.items()}
  found = parsed.findings
  assert found["clean accuracy on the attacked clips"] == _over_victims(
      {m: entry["clean_accuracy"] for m, entry in results["models"].items()})
  assert found[f"{attack} success on clean-correct clips"] == _over_victims(
      {m: f["success_rate_clean_correct"] for m, f in main.items()})
  assert found[f"{attack} median SNR in dB of the clips it made adversarial"] == _over_victims(
      {m: f["snr_db_median"] for m, f in main.items()})
  classes = len(results["class_names"])
  assert found[f"share of {attack} successes with p(true class) below 1/{classes}"] == (
      _over_victims(share))
  matrix = np.array(results["transfer"]["matrix"], np.float64)  # None -> NaN
  off = matrix[~np.eye(len(matrix), dtype=bool)]
  off = off[~np.isnan(off)]
  value, spread, _, note = found[f"{attack} transfer, mean off-diagonal success"]
  assert (value, spread) == (_rounded(np.mean(off)), _rounded(np.std(off)))
  assert note.startswith(f"{len(off)} ordered pairs of victims")
  verdicts = [check["passed"] for per_model in results["robustness"]["sanity"]["models"].values()
              for check in per_model.values()]
  made = [v for v in verdicts if v is not None]
  value, _, _, note = found["share of the robustness curve's sanity checks passed"]
  assert value == _rounded(sum(made) / len(made))
  assert note.startswith(f"{sum(made)} of {len(made)} made ({len(verdicts) - len(made)} not")
  # The tables: each cell from results.json.
  tables = _tables(parsed.rows)
  cell = lambda v: "n/a" if v is None else f"{v:.3f}"
  victims = tables[("model", "steps", "test accuracy", "accuracy on attacked clips")]
  assert victims == [[m, str(e["steps"]), cell(e["test_accuracy"]), cell(e["clean_accuracy"])]
                     for m, e in results["models"].items()]
  attack_rows = next(rows for header, rows in tables.items() if "examples" in header)
  assert attack_rows == [
      [m, a, str(f["num_examples"])] + [cell(f[key]) for key in page.PAGE_COLUMNS]
      for m, per_attack in results["attacks"].items() for a, f in per_attack.items()]
  curve = results["robustness"]
  curve_rows = tables[("model", "attack")
                      + tuple(f"{curve['param']}={v:g}" for v in curve["levels"])]
  expected = []
  for m, accuracy in curve["accuracy"].items():
    expected.append([m, curve["attack"]] + [cell(a) for a in accuracy])
    if "one_step" in curve:
      expected.append([m, f"{curve['one_step']['attack']} (one step)"]
                      + [cell(a) for a in curve["one_step"]["accuracy"][m]])
    if "double_steps" in curve:
      expected.append([m, f"{curve['attack']} ({curve['double_steps']['num_steps']} steps)"]
                      + [cell(a) for a in curve["double_steps"]["accuracy"][m]])
  assert curve_rows == expected
  checks = results["robustness"]["sanity"]["models"]
  sanity_rows = tables[("model", *sanity.CHECKS)]
  words = {True: "pass", False: "**FAIL**", None: "n/a"}
  assert [[row[0]] + [c.split(":")[0] for c in row[1:]] for row in sanity_rows] == [
      [m] + [words[c["passed"]] for c in per_model.values()] for m, per_model in checks.items()]
  models = results["transfer"]["models"]
  transfer = tables[("crafted on \\ scored on", *models)]
  assert transfer == [[m] + [cell(v) for v in row]
                      for m, row in zip(models, results["transfer"]["matrix"])]


def _set_main_attack(success, snr, share, transfer, lacking=()):
  """An edit of results.json: every victim's main-attack success on clean-correct clips, median
  SNR and confident share of its successes (success rate 1); the transfer matrix's off-diagonal
  cells; `lacking` victims with no clean-correct clip."""
  def edit(results):
    attack = results["transfer"]["attack"]
    for model, per_attack in results["attacks"].items():
      per_attack[attack].update(success_rate=1.0, confident_success_rate=share,
                                success_rate_clean_correct=None if model in lacking else success,
                                snr_db_median=snr)
    matrix = results["transfer"]["matrix"]
    for i, row in enumerate(matrix):
      matrix[i] = [value if i == j else transfer for j, value in enumerate(row)]
  return edit


def test_results_page_prints_the_figures_of_results_json(five_model_run, tmp_path):
  _, workdir, _ = five_model_run
  assert results_page.load_page("adversarial") is page
  parsed, _, results = test_results_page.write_and_parse(page, "adversarial", workdir,
                                                         str(tmp_path / "docs"))
  assert len(results["models"]) == 5
  _check_page(parsed, results)
  # Robustness, transfer matrix, the first victim's spectrograms.
  first = next(iter(results["models"]))
  assert parsed.links == ["adversarial/robustness.png", "adversarial/transfer_matrix.png",
                          f"adversarial/spectrograms_{first}.png"]
  test_results_page.assert_report_opens_with_findings(page, workdir, "results.md")
  test_results_page.assert_outcomes(page, "adversarial", workdir, tmp_path, [
      (_set_main_attack(0.95, 30.0, 0.95, 0.8), results_page.REPRODUCES),
      (_set_main_attack(0.95, 30.0, 0.95, 0.1), results_page.PARTLY),
      (_set_main_attack(0.95, 15.0, 0.95, 0.8), results_page.PARTLY),
      (_set_main_attack(0.3, 30.0, 0.95, 0.1), results_page.DOES_NOT),
      (_set_main_attack(0.95, 30.0, 0.95, 0.8, lacking=("crnn",)), results_page.NOT_JUDGED)],
                                    _check_page)


def _hand_made(victims, transfer, num_classes=10):
  """Results of the main attack "pgd": per victim (success on clean-correct clips, median SNR,
  confident success rate, success rate); every off-diagonal transfer cell `transfer`."""
  models = list(victims)
  return {
      "dataset": "toy", "num_clips": 20, "class_names": [str(c) for c in range(num_classes)],
      "attacks": {m: {"pgd": {"success_rate_clean_correct": s, "snr_db_median": snr,
                              "confident_success_rate": confident, "success_rate": rate}}
                  for m, (s, snr, confident, rate) in victims.items()},
      "transfer": {"attack": "pgd", "models": models,
                   "matrix": [[1.0 if i == j else transfer for j in range(len(models))]
                              for i in range(len(models))]}}


GOOD = (0.95, 30.0, 0.9, 1.0)


@pytest.mark.parametrize("victims, transfer, outcome", [
    ({"a": GOOD, "b": GOOD}, 0.6, results_page.REPRODUCES),
    # At each threshold exactly: success 0.9, 20 dB, 0.9 of successes confident, transfer 0.5.
    ({"a": (0.9, 20.0, 0.9, 1.0), "b": GOOD}, 0.5, results_page.REPRODUCES),
    # One victim short of one rule fails part 1: success, SNR, or confidence.
    ({"a": (0.85, 30.0, 0.9, 1.0), "b": GOOD}, 0.6, results_page.PARTLY),
    ({"a": GOOD, "b": (0.95, 19.5, 0.9, 1.0)}, 0.6, results_page.PARTLY),
    ({"a": GOOD, "b": (0.95, 30.0, 0.5, 1.0)}, 0.6, results_page.PARTLY),
    ({"a": GOOD, "b": GOOD}, 0.49, results_page.PARTLY),
    # No adversarial clip made: no SNR, no success.
    ({"a": (0.0, None, 0.0, 0.0), "b": GOOD}, 0.2, results_page.DOES_NOT),
    # A victim with no clean-correct clip; one victim, so no transfer: cannot be judged.
    ({"a": (None, None, 0.0, 0.0), "b": GOOD}, 0.6, results_page.NOT_JUDGED),
    ({"a": GOOD}, 0.6, results_page.NOT_JUDGED),
])
def test_verdict_rule_on_hand_made_results(victims, transfer, outcome):
  verdict = page.verdict(_hand_made(victims, transfer))
  assert verdict.outcome == outcome
  if victims.get("b") == (0.95, 19.5, 0.9, 1.0):
    assert "short of the rule on b (median SNR 19.5 dB)" in verdict.sentence
  if outcome == results_page.REPRODUCES and transfer == 0.6:
    assert "fool another on 0.600 of the clean-correct clips on average over 2 ordered" in (
        verdict.sentence)
