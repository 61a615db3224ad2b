"""How robust is a user's classifier? PGD on the held-out users' improvised-take patches.

Only the embedding CNN is differentiable in the embedding + per-user classifier pipeline, so the
attacker ascends the CNN's own classification loss at its label level (a `LossFn` the caller
gives: one head's cross-entropy, or the phoneme model's weighted pair with `y` of shape [2]) on
the normalised input patch, with Linf PGD (Madry et al., 2018: random start, sign steps of
`rel_step * eps / num_steps`, projection onto the ball and the patch range). The perturbed
patches are embedded and scored with the unchanged protocol (`evaluate.scores`): each held-out
user's classifiers are fit on the clean isolated-take (train) embeddings and scored on the
adversarial improvised-take (test) embeddings. A transfer attack, then: the KNN never sees a
gradient, only embeddings moved by an attack on the CNN's head.

The patch range is [0, 1] (`PATCH_BOUNDS`): `features.normalize_patch` maps a zero magnitude to
0 and the training set's largest magnitude to 1, so a patch of the published training set lies
in it. Louder clips may exceed 1; the attack's box is widened to contain the clean patch
(`attacks.project_bounds`), so such a bin is never pulled in. One unit of the patch is
`DB_PER_UNIT` (80 dB) of magnitude wherever the bin is well above the 1e-4 floor: eps = 0.01 lets
every bin move by at most 0.8 dB, about a just-noticeable level change; 0.1 by 8 dB, clearly
audible. `DEFAULTS` spans that range.

Every budget runs on one compiled attack (`eps` is traced), with the same random start per clip
(common random numbers, so the curve over eps is not noise between levels).
"""

import dataclasses
import math
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from soundjax import attacks, checks, models, parallel, report
from soundjax.checks import require
from soundjax.experiments.vocal_percussion import evaluate, features
from soundjax.metrics import perturbation
from soundjax.types import Bounds, LossFn

# The range of `features.normalize_patch` over the training set's magnitudes [0, max] (module
# docstring): 0 is silence, 1 the set's loudest bin.
PATCH_BOUNDS = (0.0, 1.0)
# Magnitude dB per unit of the normalised patch: its log stage spans `high2 - low2` nepers.
DB_PER_UNIT = 20.0 / math.log(10.0) * (features.NORM_MIN_MAX[1][1] - features.NORM_MIN_MAX[1][0])
# The experiment's robustness settings, the one source of truth (`check_config` reads its keys):
# eps 0 (clean) to 0.1 (8 dB per bin); 10 steps of 2.5 eps / 10 (Madry); every improvised clip
# (`clips_per_user=None`) or the first n per user; patches per compiled call.
DEFAULTS = {"eps": (0.0, 0.003, 0.01, 0.03, 0.1), "num_steps": 10, "rel_step": 2.5,
            "clips_per_user": None, "batch_size": 128}


class Pipeline(NamedTuple):
  """The jitted batched pieces of one level's model: built once, run for every seed and eps.

  Attributes:
    attack: `make_attack`'s `(variables, patches, y, eps, keys) -> adversarial patches`.
    embed: `(variables, patches[batch, frames, mels]) -> [batch, embedding_dim]`.
    predict: `(variables, patches) -> [batch, heads]` the argmax of every head.
  """
  attack: Callable
  embed: Callable
  predict: Callable


def make_attack(loss_fn: LossFn, *, num_steps: int, rel_step: float = 2.5,
                bounds: Bounds = PATCH_BOUNDS) -> Callable:
  """The jitted batched Linf PGD on patches, the budget traced.

  `attacks.pgd` with `step_factor=rel_step`, so that the step follows the traced budget: uniform
  start in the ball, `num_steps` sign steps of `rel_step * eps / num_steps`, each projected onto
  the ball and the box `bounds` (widened to contain the clean patch).

  Args:
    loss_fn: per-example `(variables, patch, y) -> scalar` to ascend; `y` may have any shape.
    num_steps: PGD steps, >= 1.
    rel_step: step size in units of `eps / num_steps` (Madry et al.: 2.5).
    bounds: `(lo, hi)` valid patch range, or None.

  Returns:
    `attack(variables, patches, y, eps, keys) -> adversarial patches`, batched over the leading
    axis of `patches`, `y` and `keys` (one PRNG key per patch). Pass `eps` as a `jnp.float32`
    scalar: every value then runs on one compiled program.

  Example:
    >>> attack = make_attack(losses.per_example_loss(losses.model_logits(model),
    ...                                              "softmax_cross_entropy"), num_steps=10)
    >>> x_adv = attack(variables, patches, labels, jnp.float32(0.01), keys)
  """
  checks.integer("num_steps", num_steps)
  checks.positive("rel_step", rel_step)
  bounds = checks.bounds(bounds)

  def attack_one(variables, patch, y, eps, key):
    pgd = attacks.pgd(loss_fn, eps=eps, num_steps=num_steps, step_factor=rel_step, bounds=bounds)
    return pgd(variables, patch, y, key)

  def attack(variables, patches, y, eps, keys):
    eps = jnp.asarray(eps, patches.dtype)
    return jax.vmap(attack_one, in_axes=(None, 0, 0, None, 0))(variables, patches, y, eps, keys)

  return jax.jit(attack)


def make_pipeline(model: models.EmbeddingCNN, loss_fn: LossFn, *, num_steps: int,
                  rel_step: float = 2.5, bounds: Bounds = PATCH_BOUNDS) -> Pipeline:
  """The attack of `loss_fn` (`make_attack`), the embedding and every head's prediction of
  `model` on patches (one head or several)."""
  embed = jax.jit(jax.vmap(models.embedding_fn(model), in_axes=(None, 0)))

  def predict(variables, patches):
    logits = jax.tree.leaves(model.apply(variables, patches, train=False))
    return jnp.stack([jnp.argmax(head, axis=-1) for head in logits], axis=-1)

  return Pipeline(make_attack(loss_fn, num_steps=num_steps, rel_step=rel_step, bounds=bounds),
                  embed, jax.jit(predict))


def attacked_records(records: evaluate.Records, clips_per_user: Optional[int]) -> np.ndarray:
  """Indices of every train-take record and each user's first `clips_per_user` test-take ones
  (all of them for None), in record order."""
  keep = records.is_train.copy()
  for user in np.unique(records.user):
    keep[np.flatnonzero((records.user == user) & ~records.is_train)[:clips_per_user]] = True
  return np.flatnonzero(keep)


def attacked_features(pipe: Pipeline, variables, patches: np.ndarray, y: np.ndarray,
                      records: evaluate.Records, *, eps: Sequence[float], key: jax.Array,
                      batch_size: int) -> Dict[str, Any]:
  """The features of every record at each budget: train-take rows clean, test-take rows the
  embeddings of their PGD patches; and the attack's figures per budget.

  Args:
    pipe: the level's `Pipeline`.
    variables: the trained model's variables.
    patches: `[n, frames, mels]` normalised patches, in record order.
    y: `[n, ...]` the attack's labels at the model's level (one class per head).
    records: the `n` records (`is_train` says which are attacked: the test takes).
    eps: the Linf budgets.
    key: the random starts; clip `i` of the test takes starts from `fold_in(key, i)` at every
      budget.
    batch_size: patches per compiled call.

  Returns:
    `{"features": [len(eps), n, dim] float64, "head_accuracy_clean", "curve": [{"eps",
    "head_changed", "head_accuracy", "linf_mean", "l2_mean", "nonfinite_examples"}, ...]}`:
    `head_changed` is the fraction of attacked patches for which any head's prediction changed,
    `head_accuracy` the fraction with every head right, the norms are means over attacked
    patches of `max |delta|` and `||delta||_2`; a non-finite adversarial patch is counted and
    replaced by its clean patch (a failed attack).
  """
  n = len(records.user)
  if len(patches) != n or len(y) != n:
    raise ValueError(f"patches and y must hold one row per record ({n}), got {len(patches)} "
                     f"and {len(y)}")
  train, test = np.flatnonzero(records.is_train), np.flatnonzero(~records.is_train)
  embed = parallel.chunked(pipe.embed, batch_size, variables)
  predict = parallel.chunked(pipe.predict, batch_size, variables)
  clean, labels = np.asarray(patches)[test], np.asarray(y)[test]
  truth = labels.reshape(len(test), -1)
  before = predict(clean)
  if truth.shape != before.shape:
    raise ValueError(f"y must hold one class per head ({before.shape[1]}), got rows of shape "
                     f"{labels.shape[1:]}")
  train_rows = embed(np.asarray(patches)[train])
  base = np.zeros((n, train_rows.shape[1]), np.float64)
  base[train] = train_rows
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(len(test)))
  # `chunked` passes the shared arguments (variables, the budget) first.
  attack = lambda v, level, x, targets, k: pipe.attack(v, x, targets, level, k)
  found, curve = [], []
  for level in eps:
    adv = parallel.chunked(attack, batch_size, variables, jnp.float32(level))(clean, labels, keys)
    finite = np.all(np.isfinite(adv.reshape(len(adv), -1)), axis=1)
    adv = np.where(finite.reshape((-1,) + (1,) * (adv.ndim - 1)), adv, clean)
    rows = base.copy()
    rows[test] = embed(adv)
    after = predict(adv)
    linf, l2 = (np.asarray(jax.vmap(size)(jnp.asarray(clean), jnp.asarray(adv)))
                for size in (perturbation.linf, perturbation.l2))
    found.append(rows)
    curve.append({"eps": float(level),
                  "head_changed": float(np.mean(np.any(after != before, axis=1))),
                  "head_accuracy": float(np.mean(np.all(after == truth, axis=1))),
                  "linf_mean": float(np.mean(linf)), "l2_mean": float(np.mean(l2)),
                  "nonfinite_examples": int(np.sum(~finite))})
  return {"features": np.stack(found),
          "head_accuracy_clean": float(np.mean(np.all(before == truth, axis=1))),
          "curve": curve}


def adversarial_scores(pipe: Pipeline, variables, patches: np.ndarray, y: np.ndarray,
                       records: evaluate.Records, config: ml_collections.ConfigDict, *,
                       eps: Sequence[float], seed: int, key: jax.Array, batch_size: int,
                       clips_per_user: Optional[int] = None) -> Dict[str, Any]:
  """The per-user protocol on adversarial test-take embeddings, at each budget.

  Args:
    pipe, variables, patches, y, eps, key, batch_size: as `attacked_features`.
    records: the held-out users' records (`evaluate.read_records`).
    config: the experiment config (`classifiers.methods`, `classifiers.transductive`).
    seed: the classifiers' seed (`evaluate.scores`).
    clips_per_user: attack and score only each user's first n test-take records (None: all);
      every train-take record stays.

  Returns:
    `{"num_attacked", "head_accuracy_clean", "curve": [entry per eps]}`, each entry
    `attacked_features`' figures plus `evaluate.scores`' (`users`, `num_test`, `per_user`,
    `participant_wise`, `boxeme_wise`, with "knn" the mean over k). At eps 0 the scores are
    those of the clean patches' embeddings on the same records.
  """
  index = attacked_records(records, clips_per_user)
  kept = evaluate.Records(*(getattr(records, f.name)[index]
                            for f in dataclasses.fields(evaluate.Records)))
  found = attacked_features(pipe, variables, np.asarray(patches)[index], np.asarray(y)[index],
                            kept, eps=eps, key=key, batch_size=batch_size)
  curve = [{**entry, **evaluate.scores(rows, kept, config, seed)}
           for entry, rows in zip(found["curve"], found["features"])]
  return {"num_attacked": int(np.sum(~kept.is_train)),
          "head_accuracy_clean": found["head_accuracy_clean"], "curve": curve}


def mean_std(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """Per budget, mean and (population) std over runs (seeds) of every numeric figure:
  `{"eps": [...], "curve": [{"mean": {...}, "std": {...}}, ...]}`."""
  return {"eps": [entry["eps"] for entry in runs[0]["curve"]],
          "curve": [report.mean_std([run["curve"][i] for run in runs])
                    for i in range(len(runs[0]["curve"]))]}


def table(summaries: Mapping[str, Dict[str, Any]], method: str = "knn") -> str:
  """The Markdown table: per level (`mean_std` of its runs) and budget, `method`'s participant-
  and boxeme-wise accuracy, the head's flipped fraction and the mean Linf, mean +- std."""
  def cell(figures, *path):
    mean, std = figures["mean"], figures["std"]
    for name in path:
      mean, std = mean[name], std[name]
    return f"{mean:.3f} ± {std:.3f}"

  rows = [(level, f"{eps:g}", f"{eps * DB_PER_UNIT:.1f}", cell(figures, "participant_wise", method),
           cell(figures, "boxeme_wise", method), cell(figures, "head_changed"),
           cell(figures, "linf_mean"))
          for level, summary in summaries.items()
          for eps, figures in zip(summary["eps"], summary["curve"])]
  return report.markdown_table(
      ("level", "eps", "max dB per bin", f"participant-wise {method}", f"boxeme-wise {method}",
       "head prediction changed", "mean Linf"), rows)


def check_config(settings: Mapping[str, Any]) -> None:
  """Fails, naming the field (`config.robustness.<name>`), on settings that cannot work.

  The settings are exactly the keys of `DEFAULTS`: `eps` non-negative finite budgets in strictly
  increasing order, `num_steps` and `batch_size` positive integers, `rel_step` positive,
  `clips_per_user` None or a positive integer.
  """
  for name in settings:
    require(name in DEFAULTS, f"robustness.{name}",
            f"is not a robustness setting; known: {sorted(DEFAULTS)}"
            f"{checks.closest(name, list(DEFAULTS))}.")
  for name in DEFAULTS:
    require(name in settings, f"robustness.{name}", "is missing.")
  try:
    valid = checks.increasing("eps", settings["eps"], low=0.0) is not None
  except (TypeError, ValueError):
    valid = False
  require(valid, "robustness.eps", f"must be finite budgets >= 0 in strictly increasing order, "
          f"at least one, got {settings['eps']!r}.")
  for name in ("num_steps", "batch_size"):
    require(checks.is_integer(settings[name], 1), f"robustness.{name}",
            f"must be a positive integer, got {settings[name]!r}.")
  rel_step = settings["rel_step"]
  require(checks.is_number(rel_step) and math.isfinite(rel_step) and rel_step > 0,
          "robustness.rel_step", f"must be a finite number > 0, got {rel_step!r}.")
  clips = settings["clips_per_user"]
  require(clips is None or checks.is_integer(clips, 1), "robustness.clips_per_user",
          f"must be None (every improvised clip) or an integer >= 1, got {clips!r}.")
