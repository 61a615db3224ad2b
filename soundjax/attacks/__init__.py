"""Adversarial attacks: per-example `attack(params, x, y, key) -> x_adv`, and the parts they are
built from (loop, inits, optax step normalisers, projections) for composing new ones.
"""

from soundjax.attacks.carlini_wagner import binary_search_const
from soundjax.attacks.carlini_wagner import carlini_wagner_l2
from soundjax.attacks.carlini_wagner import margin
from soundjax.attacks.carlini_wagner import tanh_box
from soundjax.attacks.core import Attack
from soundjax.attacks.core import best_of
from soundjax.attacks.core import budget
from soundjax.attacks.core import chain_projections
from soundjax.attacks.core import Init
from soundjax.attacks.core import init_noise_snr
from soundjax.attacks.core import init_uniform
from soundjax.attacks.core import init_uniform_l2
from soundjax.attacks.core import init_uniform_linf
from soundjax.attacks.core import init_zeros
from soundjax.attacks.core import iterative
from soundjax.attacks.core import normalize
from soundjax.attacks.core import normalize_l1
from soundjax.attacks.core import normalize_l2
from soundjax.attacks.core import project_ball
from soundjax.attacks.core import project_bounds
from soundjax.attacks.core import project_l2
from soundjax.attacks.core import project_linf
from soundjax.attacks.core import project_snr
from soundjax.attacks.core import project_snr_sphere
from soundjax.attacks.core import Projection
from soundjax.attacks.core import with_bounds
from soundjax.attacks.deepfool import deepfool
from soundjax.attacks.gradient import bim
from soundjax.attacks.gradient import fgsm
from soundjax.attacks.gradient import fgsm_snr
from soundjax.attacks.gradient import mi_fgsm
from soundjax.attacks.gradient import pgd
from soundjax.attacks.lbfgs import lbfgs
from soundjax.attacks.wrappers import targeted
from soundjax.attacks.wrappers import white_noise
