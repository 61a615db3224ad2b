"""A new user's mistakes, made from Python: each fails with an error naming the input and soundjax.

One test (or group) per row of the issue's table, through the public API only: configs that
train, labels that are out of range, float, one-hot or misshapen, NaN samples, clips shorter
than a frame, decreasing curve fractions and a user's own model without a `train` keyword. The
waveform model is a log-mel front end and one dense layer, so every compile takes about a second.
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from soundjax import attacks, attribution, checks, experiments, frontend, losses, training
from soundjax.experiments import adversarial, occlusion

NUM_CLASSES, SAMPLES, BATCH = 12, 256, 4
LOG_MEL = frontend.log_mel(sample_rate=8000, n_fft=64, hop_length=32, n_mels=8)
BATCHED = dict(in_axes=(None, 0, 0, 0))


class Dense(nn.Module):
  """A user's own model: logits of the flattened input, and no `train` keyword."""

  @nn.compact
  def __call__(self, x):
    return nn.Dense(NUM_CLASSES)(x.reshape(x.shape[0], -1) / 40.0)


@pytest.fixture(scope="module")
def setup():
  rng = np.random.default_rng(0)
  waveforms = jnp.asarray(0.1 * rng.standard_normal((BATCH, SAMPLES)), jnp.float32)
  model = Dense()
  variables = model.init(jax.random.key(0), jax.vmap(LOG_MEL)(waveforms[:1]))
  loss_fn = losses.softmax_cross_entropy(losses.model_logits(model, frontend=LOG_MEL))
  pgd = attacks.pgd(loss_fn, eps=0.01, step_size=0.005, num_steps=2)
  ig = attribution.integrated_gradients(loss_fn, num_steps=4)
  return {
      "variables": variables, "waveforms": waveforms, "loss_fn": loss_fn,
      "labels": jnp.array([0, 1, 2, 3]), "keys": jax.random.split(jax.random.key(1), BATCH),
      "losses": jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0))),
      "pgd": jax.jit(jax.vmap(pgd, **BATCHED)),
      # Built once per module: each call with these shapes reuses the compiled checks.
      "checked_losses": checks.checked(jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0)))),
      "checked_pgd": checks.checked(jax.jit(jax.vmap(pgd, **BATCHED))),
      "checked_ig": checks.checked(jax.jit(jax.vmap(ig, **BATCHED))),
  }


# Row: `train.train(config, workdir)` with `learning_rate=-1.0` trained. ---------------------

def test_train_from_python_refuses_a_negative_learning_rate(tmp_path):
  config = experiments.load_config("classification:quick", {"train.learning_rate": -1.0})
  with pytest.raises(checks.ConfigError,
                     match=r"^config\.train\.learning_rate must be positive, got -1\.0"):
    training.train(config, str(tmp_path))
  assert not os.listdir(tmp_path), "nothing may be written before the config is checked"


@pytest.mark.parametrize("experiment, spec, field", [
    (adversarial, "adversarial:quick", "train.learning_rate"),
    (occlusion, "occlusion:quick", "tasks.sound.train.learning_rate"),
])
def test_every_experiment_run_checks_its_config_first(tmp_path, experiment, spec, field):
  config = experiments.load_config(spec, {field: -1.0})
  with pytest.raises(checks.ConfigError, match=rf"config\.{field} must be positive"):
    experiment.run(config, str(tmp_path))
  assert not os.listdir(tmp_path)


# Rows: label 12 with 12 classes (NaN loss, yet a finite PGD clip); label -1 (wrapped to 11). --

@pytest.mark.parametrize("label", [NUM_CLASSES, -1])
def test_out_of_range_labels_give_nan_never_another_class(setup, label):
  labels = setup["labels"].at[2].set(label)
  loss = np.asarray(setup["losses"](setup["variables"], setup["waveforms"], labels))
  assert np.isnan(loss[2]), "an out-of-range label must not score as a real class"
  assert np.isfinite(np.delete(loss, 2)).all()
  adversarial_clips = np.asarray(setup["pgd"](setup["variables"], setup["waveforms"], labels,
                                              setup["keys"]))
  assert not np.isfinite(adversarial_clips[2]).all(), "no finite 'adversarial' clip"
  assert np.isfinite(np.delete(adversarial_clips, 2, axis=0)).all()


@pytest.mark.parametrize("name", ["checked_losses", "checked_pgd"])
@pytest.mark.parametrize("label", [NUM_CLASSES, -1])
def test_checked_mode_raises_on_out_of_range_labels(setup, name, label):
  args = (setup["variables"], setup["waveforms"], setup["labels"].at[1].set(label))
  args += (setup["keys"],) if name == "checked_pgd" else ()
  with pytest.raises(checks.CheckError, match=rf"soundjax\.losses\.softmax_cross_entropy: label "
                     rf"y={label} is outside \[0, 12\)"):
    setup[name](*args)


# Row: float or one-hot labels; labels of shape [8, 1]. ---------------------------------------

@pytest.mark.parametrize("labels, error, match", [
    (jnp.zeros(BATCH), TypeError, r"y must hold integer class indices, got dtype float32"),
    (jax.nn.one_hot(jnp.arange(BATCH), NUM_CLASSES), TypeError,
     r"y must hold integer.*not one-hot"),
    (jnp.zeros((BATCH, 1), jnp.int32), ValueError,
     r"y must be one integer class index per example \(shape \(\)\), got shape \(1,\)"),
])
def test_per_example_loss_names_bad_labels(setup, labels, error, match):
  with pytest.raises(error, match=r"^soundjax\.losses\.softmax_cross_entropy: " + match):
    setup["losses"](setup["variables"], setup["waveforms"], labels)


@pytest.mark.parametrize("loss", [losses.softmax_cross_entropy_on_logits,
                                  losses.smoothed_loss_on_logits("softmax_cross_entropy", 0.1)])
@pytest.mark.parametrize("labels, error, match", [
    (jnp.zeros(8), TypeError, r"y must hold integer class indices, got dtype float32"),
    (jax.nn.one_hot(jnp.arange(8), NUM_CLASSES), TypeError, r"y must hold integer.*not one-hot"),
    (jnp.zeros((8, 1), jnp.int32), ValueError,
     r"y must be integer class indices of shape \(8,\).*got shape \(8, 1\)"),
])
def test_batch_losses_name_bad_labels(loss, labels, error, match):
  with pytest.raises(error, match=r"^soundjax\.losses\.softmax_cross_entropy: " + match):
    loss(jnp.zeros((8, NUM_CLASSES)), labels)


# Row: one NaN sample turns the whole example NaN through log_mel, the loss, PGD and IG. -----

def test_checked_mode_names_a_nan_sample(setup):
  x = setup["waveforms"].at[2, 100].set(jnp.nan)
  assert np.isnan(np.asarray(LOG_MEL(x[2]))).all(), "unchecked, one sample spoils the example"
  with pytest.raises(checks.CheckError, match=r"input waveform holds 1 NaN or infinite"):
    checks.checked(LOG_MEL)(x[2])
  args = (setup["variables"], x, setup["labels"])
  for name, extra in (("checked_losses", ()), ("checked_pgd", (setup["keys"],)),
                      ("checked_ig", (setup["keys"],))):
    with pytest.raises(checks.CheckError, match=r"^soundjax\.checks\.checked\(\w+\): input x "
                       r"holds 1 NaN or infinite value"):
      setup[name](*args, *extra)


def test_checked_mode_passes_valid_inputs_through_unchanged(setup):
  args = (setup["variables"], setup["waveforms"], setup["labels"])
  np.testing.assert_array_equal(setup["checked_losses"](*args), setup["losses"](*args))
  np.testing.assert_array_equal(setup["checked_pgd"](*args, setup["keys"]),
                                setup["pgd"](*args, setup["keys"]))
  assert setup["checked_ig"](*args, setup["keys"]).shape == setup["waveforms"].shape


# Row: a 100-sample clip or an empty one to log_mel returned one frame. ----------------------

@pytest.mark.parametrize("samples, what", [(100, "has 100 samples"), (0, "is empty")])
@pytest.mark.parametrize("center", [True, False])
def test_log_mel_refuses_clips_shorter_than_a_frame(samples, what, center):
  f = frontend.log_mel(sample_rate=16000, n_fft=512, hop_length=256, n_mels=40, center=center)
  with pytest.raises(ValueError, match=rf"^soundjax\.frontend\.log_mel: the waveform {what}, "
                     r"shorter than one frame; it needs at least n_fft = 512 samples"):
    f(jnp.zeros(samples))
  with pytest.raises(ValueError, match="at least n_fft = 512 samples"):
    jax.jit(jax.vmap(f))(jnp.zeros((2, samples)))


# Row: deletion_insertion(fractions=(0.5, 0.1)) was accepted. --------------------------------

@pytest.mark.parametrize("fractions", [(0.5, 0.1), (0.0, 0.5, 0.5), (0.5, 1.5), ()])
def test_curve_fractions_must_increase_when_the_curve_is_built(setup, fractions):
  loss_fn = setup["loss_fn"]
  with pytest.raises(ValueError, match=r"^fractions must be .*strictly increasing"):
    attribution.deletion_insertion(loss_fn, attribution.gradient(loss_fn), fractions=fractions,
                                   replacement=attribution.replace_constant(0.0))
  with pytest.raises(ValueError, match=r"^fractions must be .*strictly increasing"):
    attribution.curve_area(fractions, jnp.zeros(len(fractions)))


# Row: a user's own Linen model without a `train=` keyword raised a TypeError. ---------------

def test_models_without_train_work_and_models_with_it_run_in_inference_mode(setup):
  x, variables = setup["waveforms"][0], setup["variables"]
  features = jax.jit(LOG_MEL)(x)[None]
  logits = jax.jit(losses.model_logits(Dense(), frontend=LOG_MEL))(variables, x)
  np.testing.assert_allclose(logits, Dense().apply(variables, features)[0], rtol=1e-5)
  gradient = jax.jit(jax.grad(setup["loss_fn"], argnums=1))(variables, x, 3)
  assert gradient.shape == x.shape and np.isfinite(gradient).all()

  class Flagged(nn.Module):  # Adds 100 in training mode, so the mode shows in the logits.
    @nn.compact
    def __call__(self, x, train: bool = True):
      return Dense()(x) + (100.0 if train else 0.0)

  variables = jax.jit(Flagged().init)(jax.random.key(0), features)
  logits = jax.jit(losses.model_logits(Flagged(), frontend=LOG_MEL))(variables, x)
  np.testing.assert_allclose(logits, Flagged().apply(variables, features, train=False)[0],
                             rtol=1e-5)
