"""Adversarial attacks: per-example `attack(params, x, y, key) -> x_adv`, and the parts they are
built from (loop, inits, optax step normalisers, projections) for composing new ones.
"""

from soundjax.attacks.auto_pgd import ApgdTrace, apgd, apgd_checkpoints
from soundjax.attacks.carlini_wagner import binary_search_const, carlini_wagner_l2, margin, tanh_box
from soundjax.attacks.core import (
    best_of,
    budget,
    chain_projections,
    init_noise_snr,
    init_uniform,
    init_uniform_l2,
    init_uniform_linf,
    init_zeros,
    iterative,
    normalize,
    normalize_l1,
    normalize_l2,
    project_ball,
    project_bounds,
    project_l2,
    project_linf,
    project_snr,
    project_snr_sphere,
    with_bounds,
)
from soundjax.attacks.deepfool import deepfool
from soundjax.attacks.ensemble import AutoAttackOutcome, auto_attack, robust_accuracy
from soundjax.attacks.fab import fab_targeted
from soundjax.attacks.gradient import bim, fgsm, fgsm_snr, mi_fgsm, pgd
from soundjax.attacks.lbfgs import lbfgs
from soundjax.attacks.square_search import square
from soundjax.attacks.wrappers import targeted, white_noise
from soundjax.types import Attack, Init, Projection

# The complete attacks a config may name, by name (the rest of this package is their parts).
ATTACKS = {
    "white_noise": white_noise,
    "fgsm": fgsm,
    "fgsm_snr": fgsm_snr,
    "bim": bim,
    "pgd": pgd,
    "mi_fgsm": mi_fgsm,
    "deepfool": deepfool,
    "carlini_wagner_l2": carlini_wagner_l2,
    "lbfgs": lbfgs,
    "apgd": apgd,
    "square": square,
}
