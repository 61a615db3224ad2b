"""Attack wrappers: a targeted loss from an untargeted one, and the white-noise baseline."""

from soundjax.attacks import core
from soundjax.types import Attack, Bounds, LossFn


def targeted(loss_fn: LossFn) -> LossFn:
  """Turns a loss to increase away from `y` into one that decreases towards target `y`.

  Every attack ascends its loss, so ascending `-loss_fn` moves the prediction to `y`.

  Args:
    loss_fn: `(params, x, y) -> scalar`, e.g. `softmax_cross_entropy(logits_fn)`.

  Returns:
    `(params, x, target) -> -loss_fn(params, x, target)`.

  Example:
    >>> attack = pgd(targeted(loss_fn), eps=0.01, step_size=0.002, num_steps=20)
    >>> x_adv = attack(params, x, target, key)
  """
  return lambda params, x, y: -loss_fn(params, x, y)


def white_noise(*, snr_db: float, bounds: Bounds = None) -> Attack:
  """The paper's baseline: additive white Gaussian noise at exactly `snr_db` below `x`'s power.

  Args:
    snr_db: SNR of the noise in dB (the paper's default is 20 dB).
    bounds: optional `(lo, hi)` box for `x + noise`, projected as in every other attack (the box
      widened to contain `x`, `core.project_bounds`); clipping only shrinks the noise, so the SNR
      is then at least `snr_db`.

  Returns:
    `attack(params, x, y, key) -> x + noise`, random in `key` only; `params` and `y` are unused.

  Example:
    >>> attack = white_noise(snr_db=20.0, bounds=(-1.0, 1.0))
  """
  init = core.init_noise_snr(snr_db)
  project = core.with_bounds(core.chain_projections(), bounds)

  def attack(params, x, y, key):
    del params, y
    return x + project(init(x, key), x)

  return attack
