"""The adversarial experiment's robustness curves without a trained model: the step rules on a
linear loss whose input gradient is known (so each step is a closed form), one compile per
curve, and the sanity checks of Carlini et al. (2019) on hand-made curves.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np
import pytest

from configs import adversarial as adversarial_config
from soundjax.experiments.adversarial import builders, curves, report, sanity
from soundjax.metrics import perturbation

W = jnp.array([0.5, -1.0, 2.0, -0.25, 1.5, -3.0, 0.75, 1.0])  # the input gradient: sign known
X = jnp.array([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, -0.3, 0.15])


def linear_loss(w, x, y):
  del y
  return jnp.dot(w, x)


def _rms(v):
  return float(np.sqrt(np.mean(np.square(np.asarray(v, np.float64)))))


def _run(attack, x=X):
  return np.asarray(jax.jit(attack)(W, x, 0, jax.random.key(0)))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_madry_step_is_the_factor_times_the_budget_radius(norm):
  # BIM from zero, one step of 0.5 radius / 1: delta = 0.5 * eps * sign(w) (Linf) or
  # 0.5 * eps * w / |w| (L2), inside the ball, so no projection touches it.
  direction = np.sign(W) if norm == "linf" else np.asarray(W) / np.linalg.norm(W)
  got = _run(builders.steered("bim", linear_loss, dict(eps=0.1, num_steps=1, norm=norm),
                              bounds=None, step_factor=0.5))
  np.testing.assert_allclose(got - X, 0.5 * 0.1 * direction, rtol=1e-5, atol=1e-8)
  # An SNR budget: radius RMS(x) 10^(-snr / 20) per sample (Linf), times sqrt(n) for L2; the
  # Linf cap eps = 2 does not bind.
  amplitude = _rms(X) * 10 ** (-20.0 / 20)
  size = amplitude if norm == "linf" else amplitude * np.sqrt(X.size)
  got = _run(builders.steered("bim", linear_loss, dict(eps=2.0, snr_db=20.0, num_steps=1,
                                                      norm=norm),
                              bounds=None, step_factor=0.5))
  np.testing.assert_allclose(got - X, 0.5 * size * direction, rtol=1e-5, atol=1e-8)
  assert _rms(got - X) == pytest.approx(0.5 * amplitude, rel=1e-5)


def test_madry_steps_reach_every_snr_budget_and_a_fixed_small_step_does_not():
  # The loss rises along sign(w) everywhere, so an attack that can reach the budget ends on its
  # SNR floor exactly. 10 steps of 2.5 radius / 10 can; 10 of 0.0005 stop at 0.005 per sample,
  # which RMS(x) 10^(-40 / 20) = 0.0019 is below, 10^(-20 / 20) = 0.019 above.
  kwargs = dict(eps=2.0, num_steps=10, random_start=False)
  madry = curves.sweep(lambda snr: builders.steered(
      "pgd", linear_loss, dict(kwargs, snr_db=snr), bounds=(-1.0, 1.0), step_factor=2.5))
  fixed = curves.sweep(lambda snr: builders.build_attack(
      ml_collections.ConfigDict({"attack": "pgd", "kwargs": dict(kwargs, step_size=0.0005)}),
      None, linear_loss, (-1.0, 1.0), snr_db=snr))
  x, y, keys = X[None], jnp.zeros(1, jnp.int32), jax.random.split(jax.random.key(0), 1)
  for snr in (40.0, 20.0, 10.0):
    reached = madry(W, jnp.float32(snr), x, y, keys)[0]
    assert float(perturbation.snr_db(X, reached)) == pytest.approx(snr, abs=1e-3)
    stopped = float(perturbation.snr_db(X, fixed(W, jnp.float32(snr), x, y, keys)[0]))
    assert stopped == pytest.approx(snr, abs=1e-3) if snr == 40.0 else stopped > snr + 3.0


def test_madry_pgd_starts_inside_the_radius_and_mi_fgsm_follows_the_rule():
  # Zero loss gradient (a constant loss): PGD stays at its random start, uniform in the radius.
  flat = lambda w, x, y: 0.0 * jnp.sum(x)
  start = _run(builders.steered("pgd", flat, dict(eps=0.01, num_steps=3), bounds=None,
                                step_factor=2.5)) - X
  assert 0 < np.max(np.abs(start)) <= 0.01 and len(np.unique(start)) == X.size
  # MI-FGSM steps along the sign of its momentum, here sign(w): 4 steps of 0.5 * 0.1 / 4.
  got = _run(builders.steered("mi_fgsm", linear_loss, dict(eps=0.1, num_steps=4), bounds=None,
                              step_factor=0.5))
  np.testing.assert_allclose(got - X, 0.05 * np.sign(W), rtol=1e-5)


def _pgd_curve_config(step_rule="madry"):
  config = adversarial_config.get_config("")
  config.attacks.pgd.kwargs.update(num_steps=3)
  config.robustness.update(step_rule=step_rule)
  return config


def test_every_curve_compiles_once_for_all_levels():
  config = _pgd_curve_config()
  makers = builders.curve_makers(config, None, linear_loss)
  assert set(makers) == {"accuracy"} | set(builders.EXTRA_CURVES)
  x = jnp.stack([X, 0.5 * X])
  keys = jax.random.split(jax.random.key(0), 2)
  for name, make in makers.items():
    swept = curves.sweep(make)
    snrs = []
    for level in (40.0, 25.0, 10.0):
      x_adv = swept(W, jnp.float32(level), x, jnp.zeros(2, jnp.int32), keys)
      snrs.append(np.asarray(jax.vmap(perturbation.snr_db)(x, x_adv)))
    assert swept._cache_size() == 1, name  # pylint: disable=protected-access
    # Each curve's attack reaches its budget at every level (the one-step FGSM too).
    np.testing.assert_allclose(snrs, [[40.0] * 2, [25.0] * 2, [10.0] * 2], atol=1e-3)


def test_sanity_curves_follow_the_curve_attack():
  config = _pgd_curve_config()
  assert builders.extra_curves(config)[0] == builders.EXTRA_CURVES
  assert builders.double_steps(config) == 6
  quick = adversarial_config.get_config("quick")  # fgsm_snr: one step, nothing to compare
  names, reason = builders.extra_curves(quick)
  assert names == () and "fgsm_snr" in reason
  config.robustness.update(param="num_steps", levels=(1, 2))
  assert builders.extra_curves(config)[0] == ()
  # The step as results.json records it.
  assert curves.step(_pgd_curve_config()) == {"rule": "madry", "num_steps": 3, "factor": 2.5}
  assert curves.step(_pgd_curve_config("fixed")) == {"rule": "fixed", "num_steps": 3,
                                                     "step_factor": 2.5}
  fixed = _pgd_curve_config("fixed")
  fixed.attacks.pgd.kwargs = dict(eps=0.002, step_size=0.0005, num_steps=3)
  assert curves.step(fixed) == {"rule": "fixed", "num_steps": 3, "step_size": 0.0005}


# --- sanity checks on hand-made curves ---

SNR = (40.0, 30.0, 20.0, 10.0)  # a smaller SNR is a larger budget


def test_a_rising_curve_fails_the_monotone_check_in_budget_order():
  falling = [0.9, 0.6, 0.3, 0.0]
  result = sanity.monotone(SNR, falling, larger_is_stronger=False)
  assert result == {"passed": True, "largest_rise": 0.0, "at": None}
  # The same numbers read as eps levels (larger is stronger) rise all the way.
  result = sanity.monotone(SNR, falling, larger_is_stronger=True)
  assert not result["passed"] and result["largest_rise"] == pytest.approx(0.3)
  rising = [0.9, 0.5, 0.6, 0.1]
  result = sanity.monotone(SNR, rising, larger_is_stronger=False)
  assert not result["passed"] and result["at"] == 20.0
  assert result["largest_rise"] == pytest.approx(0.1)
  assert sanity.monotone(SNR, rising, larger_is_stronger=False, rise_tolerance=0.1)["passed"]
  # Levels in any order; a level without clips is skipped.
  assert sanity.monotone((20.0, 40.0, 10.0), [0.5, 0.4, 0.0],
                         larger_is_stronger=False)["passed"] is False
  assert sanity.monotone(SNR, [0.9, None, 0.95, 0.2], larger_is_stronger=False)["at"] == 20.0
  assert sanity.monotone((10.0,), [0.0], larger_is_stronger=False)["passed"] is None


def test_reaches_zero_reads_the_largest_budget():
  assert sanity.reaches_zero(SNR, [0.9, 0.5, 0.2, 0.05], larger_is_stronger=False) == {
      "passed": True, "accuracy": 0.05, "at": 10.0}
  assert not sanity.reaches_zero(SNR, [0.9, 0.5, 0.2, 0.06], larger_is_stronger=False)["passed"]
  # eps levels listed from large to small: the largest eps is the first.
  result = sanity.reaches_zero((0.1, 0.01), [0.0, 0.7], larger_is_stronger=True)
  assert result["passed"] and result["at"] == 0.1


def test_iterative_attack_must_not_do_worse_than_one_step():
  fgsm = [0.9, 0.7, 0.5, 0.3]
  result = sanity.iterative_beats_one_step(SNR, [0.8, 0.4, 0.1, 0.0], fgsm,
                                           larger_is_stronger=False)
  assert result["passed"] and result["largest_excess"] == pytest.approx(-0.1)
  assert result["at"] == 40.0 and result["mean_gain"] == pytest.approx(0.275)
  result = sanity.iterative_beats_one_step(SNR, [0.9, 0.8, 0.1, 0.0], fgsm,
                                           larger_is_stronger=False)
  assert not result["passed"] and result["at"] == 30.0
  assert result["largest_excess"] == pytest.approx(0.1)


def test_doubling_the_steps_must_change_little():
  pgd = [0.9, 0.5, 0.2, 0.0]
  result = sanity.more_steps_change_little(SNR, pgd, [0.9, 0.46, 0.2, 0.0],
                                           larger_is_stronger=False)
  assert result["passed"] and result["largest_change"] == pytest.approx(0.04)
  result = sanity.more_steps_change_little(SNR, pgd, [0.9, 0.3, 0.1, 0.0],
                                           larger_is_stronger=False, steps_tolerance=0.05)
  assert not result["passed"] and result["at"] == 30.0
  assert result["largest_change"] == pytest.approx(0.2)
  assert result["mean_change"] == pytest.approx(-0.075)  # more steps found more


def test_check_curves_reports_every_check_and_why_one_cannot_be_made():
  checks = sanity.check_curves(SNR, [0.9, 0.5, 0.2, 0.0], larger_is_stronger=False,
                               missing="the curve attack takes no steps")
  assert list(checks) == list(sanity.CHECKS)
  assert checks["monotone"]["passed"] and checks["reaches_zero"]["passed"]
  for name in ("iterative_beats_one_step", "more_steps_change_little"):
    assert checks[name] == {"passed": None, "reason": "the curve attack takes no steps"}
  rules = sanity.rules(rise_tolerance=0.0, zero_accuracy=0.05, steps_tolerance=0.05)
  assert set(rules) == set(sanity.CHECKS) and "0.05" in rules["reaches_zero"]


@pytest.fixture
def kept_figures(monkeypatch):
  """The figures the plot functions close, kept to read their lines and legends."""
  figures = []
  monkeypatch.setattr(plt, "close", figures.append)
  return figures


def test_the_robustness_plot_draws_the_sanity_curves_beside_each_model(tmp_path, kept_figures):
  curve = {"attack": "pgd", "param": "snr_db", "levels": [30.0, 20.0],
           "accuracy": {"a": [0.8, 0.4], "b": [0.7, None]},
           "one_step": {"attack": "fgsm", "accuracy": {"a": [0.9, 0.6], "b": [0.9, 0.8]}},
           "double_steps": {"num_steps": 20, "accuracy": {"a": [0.8, 0.3], "b": [0.6, 0.1]}}}
  lines, styles = report.robustness_lines(curve)
  report.report.plot_curves(lines, str(tmp_path / "curve.png"), styles=styles, title="t",
                            xlabel="snr_db", ylabel="accuracy")
  drawn = {line.get_label(): line for line in kept_figures[0].axes[0].get_lines()}
  assert list(drawn) == ["a", "a: fgsm (one step)", "a: pgd (20 steps)",
                         "b", "b: fgsm (one step)", "b: pgd (20 steps)"]
  np.testing.assert_array_equal(drawn["a: pgd (20 steps)"].get_ydata(), [0.8, 0.3])
  assert np.isnan(drawn["b"].get_ydata()[1])  # a level not measured is a gap, not a zero
  assert [drawn[n].get_linestyle() for n in ("b", "b: fgsm (one step)", "b: pgd (20 steps)")] \
      == ["-", ":", "--"]
  assert drawn["a"].get_color() == drawn["a: fgsm (one step)"].get_color() != drawn["b"].get_color()


@pytest.mark.parametrize("count, outside", [(2, False), (7, True)])
def test_a_long_legend_goes_beside_the_axes(tmp_path, kept_figures, count, outside):
  lines = {f"line {i}": ([0.0, 1.0], [i, i + 1.0]) for i in range(count)}
  report.report.plot_curves(lines, str(tmp_path / "curve.png"), title="t", xlabel="x",
                            ylabel="y")
  axes = kept_figures[0].axes[0]
  kept_figures[0].canvas.draw()
  legend, box = axes.get_legend().get_window_extent(), axes.get_window_extent()
  assert (legend.x0 >= box.x1) == outside
