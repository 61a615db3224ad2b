"""Integrated-gradients completeness through a log front end: the baselines the docstring names.

`sum(a) = L(x) - L(baseline)` is the independent reference. A silent waveform baseline breaks it
(the log-mel is flat at silence and shifts by 20 log10(alpha) dB just after it); IG on the
log-mel with the data's mean log-mel as baseline, or a waveform baseline of noise 20 dB below
the clip, keeps it within 1 %. These are the figures `integrated_gradients` quotes (run with -s
to see them).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attribution, frontend, losses

LOG_MEL = frontend.log_mel(sample_rate=8000, n_fft=64, hop_length=32, n_mels=8)
STEPS, LABEL = 64, 1


class Tiny(nn.Module):
  """A linear classifier of log-mels (dB scaled to about unit range): like a trained CNN's, its
  loss keeps changing as the whole spectrogram shifts by 20 log10(alpha) dB."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    return nn.Dense(4)(x.reshape(x.shape[0], -1) / 40.0)


@pytest.fixture(scope="module")
def setup():
  rng = np.random.default_rng(0)
  t = np.arange(512) / 8000
  clips = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)
                    for f in (300, 900, 1500, 2500)])
  clips = jnp.asarray(clips, jnp.float32)
  features = jax.vmap(LOG_MEL)(clips)
  variables = Tiny().init(jax.random.key(0), features[:1])
  return {"clips": clips, "features": features, "variables": variables,
          "waveform_loss": losses.softmax_cross_entropy(
              losses.model_logits(Tiny(), frontend=LOG_MEL)),
          "mel_loss": losses.softmax_cross_entropy(losses.model_logits(Tiny()))}


def completeness_error(loss_fn, variables, x, baseline, steps=STEPS):
  """|sum(a) - (L(x) - L(baseline))| / |L(x) - L(baseline)| and the two sides."""
  ig = attribution.integrated_gradients(loss_fn, baseline=baseline, num_steps=steps)
  total = float(jnp.sum(jax.jit(ig)(variables, x, LABEL, jax.random.key(0))))
  start = jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)
  change = float(loss_fn(variables, x, LABEL) - loss_fn(variables, start, LABEL))
  return abs(total - change) / abs(change), total, change


@pytest.mark.parametrize("steps, least_error", [(STEPS, 0.4), (4 * STEPS, 0.2)])
def test_a_silent_waveform_baseline_breaks_completeness(setup, steps, least_error):
  error, total, change = completeness_error(setup["waveform_loss"], setup["variables"],
                                            setup["clips"][0], 0.0, steps)
  print(f"silent waveform baseline, {steps} steps: sum {total:.4f}, L(x) - L(0) {change:.4f}")
  # More steps help only slowly: the loss changes with log(alpha), much of it in the first step.
  assert error > least_error, "the docstring's warning is no longer grounded"


def test_mean_log_mel_baseline_keeps_completeness(setup):
  error, total, change = completeness_error(setup["mel_loss"], setup["variables"],
                                            setup["features"][0], setup["features"].mean(axis=0))
  print(f"mean log-mel baseline, {STEPS} steps: sum {total:.5f}, L(x) - L(mean) {change:.5f}")
  assert error < 0.01


def test_noise_baseline_20_db_below_keeps_completeness(setup):
  x = setup["clips"][0]
  noise = 0.1 * jnp.sqrt(jnp.mean(x ** 2)) * jax.random.normal(jax.random.key(3), x.shape)
  error, total, change = completeness_error(setup["waveform_loss"], setup["variables"], x, noise)
  print(f"noise baseline 20 dB below, {STEPS} steps: sum {total:.4f}, L(x) - L(b) {change:.4f}")
  assert error < 0.01
