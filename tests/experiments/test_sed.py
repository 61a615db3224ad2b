"""The SED experiment: end to end on tiny detectors (scores re-derived with sed_eval from the TSV
it writes), the attack's SNR budget and single compile, and config errors.

One run of two detectors x two seeds (module fixture) is shared by the output tests.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections.config_flags import config_path

from configs import sed_attention
from soundjax import data, metrics, parallel, training
from soundjax.checks import ConfigError
from soundjax.experiments import results_page
from soundjax.experiments import sed as sed_experiment
from soundjax.experiments.sed import evaluate, page, setup
from soundjax.metrics import sed
from tests.experiments import test_results_page
from tests.metrics.test_sed import _reference_metric
from tests.toys import TINY_FRAME_TARGETS, TINY_SED_FRONTEND, TINY_SOUNDSCAPES

pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")


def tiny_config(data_dir):
  """The quick variant on the tiny soundscapes: a baseline and a two-head model, 2 steps each."""
  config = sed_attention.get_config("quick")
  config.data.settings = dict(TINY_SOUNDSCAPES)
  config.data.data_dir = data_dir
  config.data.num_samples = 8000
  config.frontend.update(TINY_SED_FRONTEND, win_length=200,
                         num_frames=TINY_FRAME_TARGETS["num_frames"])
  config.model.kwargs = {"channels": (4, 4), "pools": (2, 2), "hidden": 4}
  config.attention.units = 4
  config.widths = ()
  config.multi_head_widths = (3, None)
  config.train.update(num_steps=2, batch_size=4, eval_every=1, eval_batch_size=4,
                      checkpoint_every=2)
  config.attack.update(num_clips=3, batch_size=2, num_steps=2, snr_db=(30.0, 10.0))
  config.scoring.psds_thresholds = 5
  return config


@pytest.fixture(scope="module")
def sed_run(tiny_soundscapes_dir, tmp_path_factory):
  config = tiny_config(tiny_soundscapes_dir)
  workdir = str(tmp_path_factory.mktemp("sed"))
  return config, workdir, sed_experiment.run(config, workdir)


def test_scores_equal_sed_eval_on_the_written_predictions(sed_run, tiny_soundscapes_dir):
  config, workdir, results = sed_run
  builder = data.prepare_config(config.data)
  reference = evaluate.reference(builder, "test", config)
  labels = results["class_names"]
  for name, entry in results["detectors"].items():
    estimated = sed.read_events_tsv(os.path.join(workdir, "predictions", f"{name}.tsv"))
    assert set(estimated) <= set(reference.filenames)
    first = entry["runs"][0]
    event = _reference_metric("event", reference.events, estimated, labels, t_collar=0.25,
                              percentage_of_length=0.5, evaluate_offset=False).results()
    segment = _reference_metric("segment", reference.events, estimated, labels,
                                time_resolution=1.0).results()
    np.testing.assert_allclose(first["event"]["f_measure"],
                               event["overall"]["f_measure"]["f_measure"], equal_nan=True)
    np.testing.assert_allclose(first["event"]["error_rate"],
                               event["overall"]["error_rate"]["error_rate"])
    np.testing.assert_allclose(first["segment"]["f_measure"],
                               segment["overall"]["f_measure"]["f_measure"], equal_nan=True)
    assert first["threshold"] in config.decode.threshold_grid
    assert first["selected_step"] in (1, 2)


def test_mean_and_std_are_over_seeds(sed_run):
  config, _, results = sed_run
  for entry in results["detectors"].values():
    assert [run["seed"] for run in entry["runs"]] == list(config.seeds)
    f = np.array([run["segment"]["f_measure"] for run in entry["runs"]], np.float64)
    np.testing.assert_allclose(entry["mean"]["segment"]["f_measure"], np.nanmean(f))
    np.testing.assert_allclose(entry["std"]["segment"]["f_measure"], np.nanstd(f))


def test_attack_curve_respects_each_snr_floor(sed_run):
  config, _, results = sed_run
  for entry in results["detectors"].values():
    curve = entry["robustness"]["curve"]
    assert [point["snr_db"] for point in curve] == list(config.attack.snr_db)
    for point in curve:
      assert point["measured_snr_db_min"] >= point["snr_db"] - 1e-3


def test_attacked_clips_are_scored_against_their_own_events_only(sed_run):
  config, workdir, results = sed_run
  builder = data.prepare_config(config.data)
  reference = evaluate.reference(builder, "test", config)
  names = reference.filenames[:config.attack.num_clips]
  for name, entry in results["detectors"].items():
    # The written predictions are the first seed's, whose probabilities the attack starts from.
    estimated = sed.read_events_tsv(os.path.join(workdir, "predictions", f"{name}.tsv"))
    event = _reference_metric("event", {f: reference.events[f] for f in names}, estimated,
                              results["class_names"], t_collar=0.25, percentage_of_length=0.5,
                              evaluate_offset=False)
    clean = entry["robustness"]["clean"]
    np.testing.assert_allclose(clean["event_error_rate"],
                               event.results()["overall"]["error_rate"]["error_rate"])
    np.testing.assert_allclose(clean["event_f"],
                               event.results()["overall"]["f_measure"]["f_measure"],
                               equal_nan=True)


def test_first_files_of_a_reference_keep_only_their_events():
  reference = evaluate.Reference(["a", "b", "c"], {"a": [(0.0, 1.0, "dog")], "b": [],
                                                   "c": [(1.0, 2.0, "car")]},
                                 {"a": 5.0, "b": 4.0, "c": 3.0})
  first = reference.first(2)
  assert first == evaluate.Reference(["a", "b"], {"a": [(0.0, 1.0, "dog")], "b": []},
                                     {"a": 5.0, "b": 4.0})
  scores = evaluate.event_scores(first, {"a": [(0.0, 1.0, "dog")]}, ["car", "dog"], 0.25)
  assert scores == {"event_f": 1.0, "event_error_rate": 0.0}  # c's car is not a miss


def test_report_files_and_tables(sed_run):
  _, workdir, results = sed_run
  assert sorted(results["detectors"]) == [setup.BASELINE, setup.MULTI_HEAD]
  for name in ("results.md", "summary.md", "event_f_vs_width.png", "event_f_vs_snr.png",
               "piano_rolls.png", f"attention_{setup.MULTI_HEAD}.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  assert not os.path.exists(os.path.join(workdir, f"attention_{setup.BASELINE}.png"))
  with open(os.path.join(workdir, "results.json")) as file:
    assert json.load(file)["detectors"].keys() == results["detectors"].keys()
  with open(os.path.join(workdir, "results.md")) as file:
    text = file.read()
  assert "| detector | widths | event F | event ER | segment F | segment ER |" in text
  assert "| multi_head | 3, all |" in text


def test_pgd_compiles_once_for_every_snr(tiny_soundscapes_dir):
  config = tiny_config(tiny_soundscapes_dir)
  builder = data.prepare_config(config.data)
  detector = setup.detectors(config)[-1]
  task = training.build_task(setup.detector_config(config, detector, 0), 12)
  clips = data.arrays(builder, "test", limit=2, num_samples=8000,
                      frame_targets=TINY_FRAME_TARGETS)
  variables = jax.jit(lambda key: task.model.init(key, task.features(clips["x"])))(
      jax.random.key(0))
  attack = evaluate.make_attack(task, config, jax.random.key(1))
  for snr in (30.0, 10.0, 5.0):
    run = parallel.chunked(attack, 2, variables, jnp.float32(snr))
    x_adv, probs = run(clips["x"], clips["y"], np.arange(2))
    measured = jax.vmap(metrics.perturbation.snr_db)(clips["x"], x_adv)
    assert np.all(np.asarray(measured) >= snr - 1e-3) and np.all(np.asarray(measured) < 60.0)
    assert probs.shape == (2, TINY_FRAME_TARGETS["num_frames"], 12)
  assert attack._cache_size() == 1


@pytest.mark.parametrize("variant", ["", "quick", "urban_sed"])
def test_shipped_configs_are_valid(variant):
  setup.check_config(sed_attention.get_config(variant))


@pytest.mark.parametrize("field, value, message", [
    ("seeds", (0, 0), "config.seeds must be distinct"),
    ("widths", (0,), "config.widths must hold positive integers"),
    ("multi_head_widths", (5, 5), "config.multi_head_widths must be distinct"),
    ("decode.threshold_grid", (0.5, 0.2), "config.decode.threshold_grid must be increasing"),
    ("decode.median_window", 4, "config.decode.median_window must be an odd number"),
    ("attention.score", "cosine", "config.attention"),
    ("model.name", "vgg", "config.loss is 'multilabel_sigmoid_cross_entropy', but vgg"),
    ("scoring.psds_thresholds", 1, "config.scoring.psds_thresholds must be an integer >= 2"),
    ("attack.step_factor", -1.0, "config.attack"),
    ("selection_threshold", 1.0, "config.selection_threshold must be in (0, 1)"),
])
def test_bad_values_fail_at_start_naming_the_field(tmp_path, field, value, message):
  config = sed_attention.get_config("quick")
  config_path.set_value(field, config, value)
  with pytest.raises(ConfigError) as error:
    sed_experiment.run(config, str(tmp_path))
  assert message in str(error.value)
  assert not os.listdir(tmp_path), "nothing may be written before the config is checked"


def _event_f(entry, statistic="mean"):
  return entry[statistic]["event"]["f_measure"]


def _check_page(parsed, results):
  """Every figure on the page against results.json: the findings and the score table."""
  detectors = results["detectors"]
  baseline = detectors[setup.BASELINE]
  found = parsed.findings
  assert found["test event F, CRNN without attention"][:3] == (
      _rounded(_event_f(baseline)), _rounded(_event_f(baseline, "std")), 0.201)
  scored = {n: _event_f(e) for n, e in detectors.items()
            if n != setup.BASELINE and _event_f(e) is not None}
  if scored:
    best = max(scored, key=scored.get)
    value, spread, published, note = found["test event F, best attention detector"]
    assert (value, spread, published) == (_rounded(scored[best]),
                                          _rounded(_event_f(detectors[best], "std")), 0.3392)
    assert note.startswith(f"{best} (widths ")
    if _event_f(baseline) is not None:
      assert found["gain of the best attention detector in event F"][0] == _rounded(
          scored[best] - _event_f(baseline))
  for row in parsed.rows:
    if row[0] in detectors:
      entry = detectors[row[0]]
      for cell, key, sub in ((row[2], "event", "f_measure"), (row[3], "event", "error_rate"),
                             (row[4], "segment", "f_measure")):
        mean, std = entry["mean"][key][sub], entry["std"][key][sub]
        assert cell == ("n/a" if mean is None else f"{mean:.3f} ± {std:.3f}")
  assert {row[0] for row in parsed.rows} >= set(detectors)


def _rounded(value):
  return None if value is None else round(value, 3)


def _set_event_f(scores):
  """An edit of results.json: each named detector's mean and std test event F."""
  def edit(results):
    for name, (mean, std) in scores.items():
      results["detectors"][name]["mean"]["event"]["f_measure"] = mean
      results["detectors"][name]["std"]["event"]["f_measure"] = std
  return edit


def test_results_page_prints_the_figures_of_results_json(sed_run, tmp_path):
  _, workdir, _ = sed_run
  parsed, _, results = test_results_page.write_and_parse(page, "sed", workdir,
                                                         str(tmp_path / "docs"))
  _check_page(parsed, results)
  assert len(parsed.links) == 3  # Width plot, SNR plot, piano rolls.
  test_results_page.assert_report_opens_with_findings(page, workdir, "results.md")
  test_results_page.assert_outcomes(page, "sed", workdir, tmp_path, [
      (_set_event_f({setup.BASELINE: (0.2, 0.01), setup.MULTI_HEAD: (0.5, 0.02)}),
       results_page.REPRODUCES),
      (_set_event_f({setup.BASELINE: (0.2, 0.05), setup.MULTI_HEAD: (0.25, 0.05)}),
       results_page.PARTLY),
      (_set_event_f({setup.BASELINE: (0.4, 0.01), setup.MULTI_HEAD: (0.1, 0.01)}),
       results_page.DOES_NOT)], _check_page)


def _hand_made(scores, seeds=3):
  """Results with each detector's (mean, std) test event F."""
  entry = lambda widths, f: {"widths": widths, "mean": {"event": {"f_measure": f[0]}},
                             "std": {"event": {"f_measure": f[1]}}, "runs": [{}] * seeds}
  return {"dataset": "toy", "seeds": list(range(seeds)),
          "detectors": {name: entry([] if name == setup.BASELINE else [5], f)
                        for name, f in scores.items()}}


def test_one_seed_shows_no_spread():
  scores = {"baseline": (0.20, 0.0), "width_5": (0.30, 0.0)}
  for seeds, spread in ((1, None), (3, 0.0)):
    found = page.findings(_hand_made(scores, seeds))
    assert [f.spread for f in found[:2]] == [spread, spread]


@pytest.mark.parametrize("scores, seeds, outcome", [
    # The best attention detector (width_25) by more than the summed stds: reproduces.
    ({"baseline": (0.20, 0.01), "width_5": (0.15, 0.0), "width_25": (0.30, 0.02)}, 3,
     results_page.REPRODUCES),
    # Better, but within the seeds' spread (0.04 < 0.02 + 0.03), or with one seed: partly.
    ({"baseline": (0.20, 0.02), "width_5": (0.24, 0.03)}, 3, results_page.PARTLY),
    ({"baseline": (0.20, 0.0), "width_5": (0.30, 0.0)}, 1, results_page.PARTLY),
    # No attention detector above the baseline: does not.
    ({"baseline": (0.20, 0.01), "width_5": (0.20, 0.0), "width_25": (0.1, 0.0)}, 3,
     results_page.DOES_NOT),
    # No baseline F (undefined) or no attention detector: cannot be judged.
    ({"baseline": (None, None), "width_5": (0.3, 0.0)}, 3, results_page.NOT_JUDGED),
    ({"baseline": (0.2, 0.0)}, 3, results_page.NOT_JUDGED),
])
def test_verdict_rule_on_hand_made_results(scores, seeds, outcome):
  verdict = page.verdict(_hand_made(scores, seeds))
  assert verdict.outcome == outcome
  if outcome == results_page.REPRODUCES:
    assert "(width_25) has event F 0.300 against the baseline's 0.200 (+0.100)" in (
        verdict.sentence)
