"""The vocal percussion experiment end to end on a tiny set (3 users, 1 held out, 3 levels (one
with two heads) x 2 seeds, 2 training steps): per-user accuracies re-derived with scikit-learn from
the embeddings it saved, aggregates over users and seeds, the held-out user's absence from
training, the two-head loss, files, and config errors.
"""

import json
import os

import jax
import numpy as np
import pytest
from ml_collections.config_flags import config_path
from sklearn.neighbors import KNeighborsClassifier

from configs import vocal_percussion
from soundjax import data, training
from soundjax.checks import ConfigError
from soundjax.experiments import results_page
from soundjax.experiments import vocal_percussion as vp_experiment
from soundjax.experiments.vocal_percussion import evaluate, page, robustness, setup
from soundjax.experiments.vocal_percussion import report as vp_report
from tests.experiments import test_results_page
from tests.test_losses import log_softmax

TINY = dict(num_users=3, utterances_per_instrument=3, test_utterances=6, clip_seconds=0.4)
HELD_OUT = (1,)


def tiny_config(data_dir):
  """The quick variant on 3 users (user 1 held out), a 2-block CNN, 2 steps per model."""
  config = vocal_percussion.get_config("quick")
  config.data.settings.update(TINY)
  config.data.data_dir = data_dir
  config.held_out_users = HELD_OUT
  config.seeds = (0, 1)
  config.levels = ("instrument", "syllable", "phoneme")  # A two-head model too.
  config.model.kwargs = {"embedding_dim": 4, "channels": (4, 4)}
  config.train.update(num_steps=2, batch_size=4, eval_every=1, eval_batch_size=8,
                      checkpoint_every=2, log_every=1)
  config.baselines.update(num_trees=5, num_repeats=2, num_features=8)
  config.saliency.clips_per_instrument = 2
  config.embed_batch_size = 8
  return config


@pytest.fixture(scope="module")
def vp_run(tmp_path_factory):
  config = tiny_config(str(tmp_path_factory.mktemp("tfds_vp")))
  workdir = str(tmp_path_factory.mktemp("vp"))
  return config, workdir, vp_experiment.run(config, workdir)


def _records(config, split):
  """(user, instrument) of every record of a split, read straight from the builder."""
  source = data.split_source(data.prepare_config(config.data), split)
  return np.array([(int(source[i]["user"]), int(source[i]["instrument"]))
                   for i in range(len(source))])


def _normalise(train, test):
  """The published z-scoring, written out: per dimension over train and test, then globally."""
  both = np.concatenate([train, test])
  train, test = [(x - both.mean(0)) / (both.std(0) + 1e-16) for x in (train, test)]
  both = np.concatenate([train, test])
  return [(x - both.mean()) / (both.std() + 1e-16) for x in (train, test)]


def test_per_user_knn_equals_sklearn_on_the_saved_embeddings(vp_run):
  config, workdir, results = vp_run
  test_records = _records(config, "test")
  for level, entry in results["embeddings"].items():
    for run in entry["runs"]:
      saved = np.load(os.path.join(workdir, run["embeddings_file"]))
      assert set(saved["user"]) == set(HELD_OUT)
      for row, user in enumerate(run["users"]):
        mine = saved["user"] == user
        train, test = mine & saved["is_train"], mine & ~saved["is_train"]
        x_train, x_test = _normalise(saved["embeddings"][train], saved["embeddings"][test])
        for k in (3, 11):
          knn = KNeighborsClassifier(n_neighbors=k).fit(x_train, saved["instrument"][train])
          expected = np.mean(knn.predict(x_test) == saved["instrument"][test])
          assert run["per_user"][f"knn_{k}"][row] == pytest.approx(expected), (level, k)
        # The test records are the user's improvised take, counted from the builder.
        assert run["num_test"][row] == np.sum(test_records[:, 0] == user)
        np.testing.assert_array_equal(saved["instrument"][test],
                                      test_records[test_records[:, 0] == user, 1])


def test_aggregates_over_users_and_seeds(vp_run):
  config, _, results = vp_run
  entries = list(results["embeddings"].values()) + list(results["baselines"].values())
  assert sorted(results["baselines"]) == ["feature_selection", "gmm_hmm", "timbre"]
  for entry in entries:
    assert [run["seed"] for run in entry["runs"]] == list(config.seeds)
    for method in entry["runs"][0]["per_user"]:
      per_seed_p, per_seed_b = [], []
      for run in entry["runs"]:
        accuracy, weights = np.array(run["per_user"][method]), np.array(run["num_test"])
        per_seed_p.append(accuracy.mean())
        per_seed_b.append(np.sum(accuracy * weights) / weights.sum())
        assert run["participant_wise"][method] == pytest.approx(per_seed_p[-1])
        assert run["boxeme_wise"][method] == pytest.approx(per_seed_b[-1])
      assert entry["mean"]["participant_wise"][method] == pytest.approx(np.mean(per_seed_p))
      assert entry["std"]["participant_wise"][method] == pytest.approx(np.std(per_seed_p))
      assert entry["mean"]["boxeme_wise"][method] == pytest.approx(np.mean(per_seed_b))
    if "knn_3" not in entry["runs"][0]["per_user"]:  # The recogniser: its own method only.
      assert list(entry["runs"][0]["per_user"]) == ["gmm_hmm"]
      continue
    knn = [np.mean([run["participant_wise"][f"knn_{k}"] for k in (3, 5, 7, 9, 11)])
           for run in entry["runs"]]
    assert entry["mean"]["participant_wise"]["knn"] == pytest.approx(np.mean(knn))


def test_held_out_users_are_left_out_of_training(vp_run):
  config, _, results = vp_run
  train, test = _records(config, "train"), _records(config, "test")
  others = lambda records: int(np.sum(~np.isin(records[:, 0], HELD_OUT)))
  for entry in results["embeddings"].values():
    assert entry["num_training_records"] == others(train) < len(train)
    for run in entry["runs"]:
      # The loop's own evaluation split (selection and final figures) lacks them too.
      assert run["num_validation_records"] == others(test) < len(test)
      assert run["selected_step"] in (1, 2)


def test_files_and_tables(vp_run):
  config, workdir, results = vp_run
  for name in ("results.md", "summary.md", "saliency.png", "embedding_scatter.png",
               "results.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  for level in config.levels:
    for seed in config.seeds:
      assert os.listdir(os.path.join(workdir, "models", level, f"seed_{seed}"))
  with open(os.path.join(workdir, "results.json")) as file:
    written = json.load(file)
  assert written["embeddings"].keys() == results["embeddings"].keys()
  with open(os.path.join(workdir, "results.md")) as file:
    text = file.read()
  assert "| Method | Participant-wise acc. | Boxeme-wise acc. |" in text
  for row in ("| GMM-HMM (hmmlearn, standing in for Kaldi) |", "| Timbre (MFCC + envelope) |",
              "| Feature Selection |", "| Instrument Original |", "| Syllable Original |",
              "| Phoneme Original |", "## Robustness of the per-user classifiers"):
    assert row in text
  assert results["saliency"]["instruments"] == ["kd", "sd", "hhc", "hho"]
  assert len(results["saliency"]["accuracy"]) == len(config.seeds)


def test_a_rerun_restores_every_model(vp_run):
  config, workdir, results = vp_run
  metrics = os.path.join(workdir, "models", "instrument", "seed_0", "metrics.jsonl")
  with open(metrics) as file:
    rows = file.read()
  again = vp_experiment.run(config, workdir)
  with open(metrics) as file:
    assert file.read() == rows, "a re-run must restore, not train or log again"
  for level, entry in results["embeddings"].items():
    assert again["embeddings"][level]["runs"] == entry["runs"]


def test_robustness_curve_per_level_and_the_recogniser_baseline(vp_run):
  config, _, results = vp_run
  for entry in results["embeddings"].values():
    for run in entry["runs"]:
      curve = run["robustness"]["curve"]
      assert [point["eps"] for point in curve] == pytest.approx(list(config.robustness.eps))
      assert curve[0]["head_changed"] == 0.0 and curve[0]["linf_mean"] == 0.0
      for point in curve:
        assert point["linf_mean"] <= point["eps"] + 1e-6
        # Every held-out user's improvised records are attacked (up to clips_per_user).
        assert sum(point["num_test"]) == run["robustness"]["num_attacked"]
    assert len(entry["robustness"]["curve"]) == len(config.robustness.eps)
  recognised = results["baselines"]["gmm_hmm"]
  assert [run["seed"] for run in recognised["runs"]] == list(config.seeds)
  assert 0.0 <= recognised["mean"]["participant_wise"]["gmm_hmm"] <= 1.0


def test_the_phoneme_model_has_two_heads_and_their_weighted_loss(vp_run):
  config, workdir, results = vp_run
  builder = data.prepare_config(config.data)
  heads = setup.HEADS["phoneme"]
  assert tuple(results["embeddings"]["phoneme"]["num_classes"]) == tuple(
      builder.info.features[head].num_classes for head in heads)
  # Restored (nothing trained): its evaluation of the training users' improvised takes.
  level = setup.level_config(config, "phoneme", config.seeds[0])
  result = training.train(level, os.path.join(workdir, "models", "phoneme", "seed_0"),
                          builder=builder, task=setup.task(config, "phoneme", tuple(
                              results["embeddings"]["phoneme"]["num_classes"])))
  onset, nucleus = result.evaluation["logits"]
  y = result.evaluation["labels"]
  rows = np.arange(len(y))
  expected = np.mean(-0.6 * log_softmax(onset)[rows, y[:, 0]]
                     - 0.4 * log_softmax(nucleus)[rows, y[:, 1]])
  assert result.evaluation["loss"] == pytest.approx(expected, rel=1e-5)
  accuracy = np.mean([onset.argmax(-1) == y[:, 0], nucleus.argmax(-1) == y[:, 1]])
  assert result.evaluation["accuracy"] == pytest.approx(accuracy)


def test_embedding_compiles_once_for_every_seed(tmp_path):
  config = tiny_config(str(tmp_path))
  model = setup.task(config, "instrument", 4).model
  embed_fn = evaluate.embedder(model, config)
  audio = np.zeros((3, 6400), np.float32)
  for seed in (0, 1):
    patch = (1, config.patch.num_frames, config.patch.n_mels)
    variables = model.init(jax.random.key(seed), np.zeros(patch, np.float32))
    z = evaluate.embed(embed_fn, variables, audio, batch_size=2)
    assert z.shape == (3, 4)
  assert embed_fn._cache_size() == 1


def test_too_few_records_for_the_largest_k_fail_before_training(tmp_path):
  config = tiny_config(str(tmp_path / "tfds"))
  config.data.settings.update(utterances_per_instrument=2)  # 8 isolated records < k = 11
  workdir = tmp_path / "work"
  with pytest.raises(ConfigError, match="config.held_out_users holds user 1, who has 8 "):
    vp_experiment.run(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize("variant", vocal_percussion.VARIANTS)
def test_shipped_configs_are_valid(variant):
  config = vocal_percussion.get_config(variant)
  setup.check_config(config)
  robustness.check_config(config.robustness)


@pytest.mark.parametrize("field, value, message", [
    ("seeds", (0, 0), "config.seeds must be distinct"),
    ("levels", ("syllables",), "config.levels holds 'syllables', not a label level"),
    ("held_out_users", (0, 9), "config.held_out_users holds user 9, but the dataset has users"),
    ("held_out_users", tuple(range(6)), "config.held_out_users holds every one"),
    ("level_train.instrument.learning_rate", -1.0, "level 'instrument' (config.train with "
     "config.level_train.instrument): config.train.learning_rate must be positive"),
    ("phoneme_loss_weights", (0.6,), "config.phoneme_loss_weights must be two positive"),
    ("train.early_stopping_patience", 0, "config.train.early_stopping_patience must be"),
    ("classifiers.methods", ("knn_4",), "config.classifiers.methods must be distinct names"),
    ("baselines.timbre", "mfcc", "config.baselines.timbre is 'mfcc'"),
    ("baselines.num_features", 300, "config.baselines.num_features is 300"),
    ("patch.num_frames", 40, "config.patch is 40 frames x 32 mels"),
    ("train.batch_size", 0, "config.train.batch_size must be positive"),
    ("saliency.clips_per_instrument", -1, "config.saliency.clips_per_instrument"),
    ("robustness.eps", (0.1, 0.01), "config.robustness.eps must be finite budgets"),
])
def test_bad_values_fail_at_start_naming_the_field(tmp_path, field, value, message):
  config = vocal_percussion.get_config("quick")
  config_path.set_value(field, config, value)
  with pytest.raises(ConfigError) as error:
    vp_experiment.run(config, str(tmp_path))
  assert message in str(error.value)
  assert not os.listdir(tmp_path), "nothing may be written before the config is checked"


def _knn(entry, key="participant_wise", statistic="mean"):
  """A row's published figure: KNN's mean over k, or the recogniser's own accuracy."""
  figures = entry[statistic][key]
  return figures["knn"] if "knn" in figures else figures["gmm_hmm"]


def _check_page(parsed, results):
  """Every figure on the page against results.json: the findings and the KNN table."""
  entries = {**results["baselines"], **results["embeddings"]}
  names = {**vp_report.BASELINE_NAMES, **vp_report.LEVEL_NAMES}
  found = parsed.findings
  for key in ("syllable", "instrument", "timbre", "feature_selection", "gmm_hmm"):
    value, spread, published, _ = found[f"participant-wise accuracy, {names[key]}"]
    assert (value, spread) == (round(_knn(entries[key]), 3),
                               round(_knn(entries[key], statistic="std"), 3))
    assert published == page.PUBLISHED[key][0]
  top = max(entries, key=lambda key: _knn(entries[key]))
  value, _, _, note = found["participant-wise accuracy, best row"]
  assert value == round(_knn(entries[top]), 3) and note.startswith(names[top])
  rows = {row[0]: row for row in parsed.rows}
  for key, entry in entries.items():
    row = rows[names[key]]
    for cell, figure in zip(row[1:3], ("participant_wise", "boxeme_wise")):
      assert cell == f"{_knn(entry, figure):.3f} ± {_knn(entry, figure, 'std'):.3f}"
    assert row[3:] == [f"{v:.3f}" for v in page.PUBLISHED[key]]


def _set_knn(values):
  """An edit of results.json: each named row's mean participant-wise KNN accuracy."""
  def edit(results):
    for key, value in values.items():
      entry = results["embeddings"].get(key) or results["baselines"][key]
      entry["mean"]["participant_wise"]["knn" if key != "gmm_hmm" else "gmm_hmm"] = value
  return edit


def test_results_page_prints_the_figures_of_results_json(vp_run, tmp_path):
  _, workdir, _ = vp_run
  parsed, _, results = test_results_page.write_and_parse(page, "vocal_percussion", workdir,
                                                         str(tmp_path / "docs"))
  _check_page(parsed, results)
  assert len(parsed.links) == 2  # Saliency, embeddings.
  test_results_page.assert_report_opens_with_findings(page, workdir, "results.md")
  low = {"timbre": 0.5, "feature_selection": 0.5, "gmm_hmm": 0.5}
  test_results_page.assert_outcomes(page, "vocal_percussion", workdir, tmp_path, [
      (_set_knn({"syllable": 0.9, "instrument": 0.8, **low}), results_page.REPRODUCES),
      (_set_knn({"syllable": 0.9, "instrument": 0.95, **low}), results_page.PARTLY),
      (_set_knn({"syllable": 0.4, "instrument": 0.95, **low}), results_page.DOES_NOT)],
                                    _check_page)


def _hand_made(levels, baselines):
  """Results with each row's mean participant-wise KNN accuracy (the recogniser's own)."""
  entry = lambda method, value: {"mean": {"participant_wise": {method: value}},
                                 "std": {"participant_wise": {method: 0.0}}}
  return {"dataset": "toy", "seeds": [0], "held_out_users": [1, 2],
          "embeddings": {key: entry("knn", value) for key, value in levels.items()},
          "baselines": {key: entry("gmm_hmm" if key == "gmm_hmm" else "knn", value)
                        for key, value in baselines.items()}}


@pytest.mark.parametrize("levels, baselines, outcome", [
    ({"syllable": 0.9, "instrument": 0.8}, {"timbre": 0.85, "gmm_hmm": 0.7},
     results_page.REPRODUCES),
    # Beats instrument, not the strongest baseline (the recogniser here): partly.
    ({"syllable": 0.9, "instrument": 0.8}, {"timbre": 0.85, "gmm_hmm": 0.95},
     results_page.PARTLY),
    ({"syllable": 0.8, "instrument": 0.9}, {"timbre": 0.7}, results_page.PARTLY),
    ({"syllable": 0.8, "instrument": 0.8}, {"timbre": 0.85}, results_page.DOES_NOT),
    ({"syllable": 0.9, "instrument": 0.8}, {}, results_page.REPRODUCES),
    ({"syllable": 0.9}, {"timbre": 0.7}, results_page.NOT_JUDGED),
])
def test_verdict_rule_on_hand_made_results(levels, baselines, outcome):
  verdict = page.verdict(_hand_made(levels, baselines))
  assert verdict.outcome == outcome
  if outcome == results_page.PARTLY and baselines.get("gmm_hmm") == 0.95:
    assert "does not beat GMM-HMM (hmmlearn, standing in for Kaldi) (0.900 against 0.950), " \
           "the strongest baseline" in verdict.sentence
