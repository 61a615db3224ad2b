"""AutoAttack's standard ensemble (Croce and Hein, 2020), per example and compiled, with the
gradient-masking diagnostics reported next to its robust accuracy.

The reference (`autoattack/autoattack.py`, `version='standard'`) runs APGD-CE, APGD-T (targeted
DLR loss, the 9 classes ranked after the top one), FAB-T and Square (5000 queries) in order, each
on the examples still classified correctly, and keeps the first adversarial example found. Here
each example runs the same sequence inside one traced function: a later component (or restart,
or target class) is a trip of a `lax.while_loop` that runs only while the example is unbroken.
Under `jax.vmap` the loop runs while any example of the batch is unbroken (the others' state is
kept by a select), so a batch broken by APGD-CE skips APGD-T, FAB-T and Square altogether, no
shape depends on the data (one compile per shape), and an example's result does not depend on
its batch. The price: in a batch with one survivor, every example pays that survivor's compute.

As in the reference, an APGD run succeeds when any of its iterates is misclassified (its
`x_best_adv`, `apgd(is_adversarial=...)`), a FAB-T run when it found a misclassified point inside
the budget (`fab_targeted`), and success is judged again on the point returned. A point with a
NaN or infinity never counts as adversarial.

Deviations from the reference:
- Targets are the `min(num_target_classes, classes - 1)` classes ranked after the top one, for
  APGD-T and FAB-T alike (the reference warns with fewer than 10 classes); inputs are clipped to
  `bounds` (the reference clamps to [0, 1]); each component and run has its own key
  (`auto_attack`).
- One `num_steps` and one `num_restarts` serve APGD and FAB-T: the reference's standard version
  sets both to 100 steps and 1 restart (its `plus` version, 5 restarts each).
"""

from typing import Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp

from soundjax import checks
from soundjax.attacks import core
from soundjax.attacks.auto_pgd import apgd
from soundjax.attacks.fab import fab_targeted
from soundjax.attacks.square_search import square
from soundjax.types import Bounds, LogitsFn, LossFn

# The components of the standard version, in order, for Linf and L2 alike: the one place that
# lists them.
COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")
_WHERE = "soundjax.attacks.auto_attack"


class AutoAttackOutcome(NamedTuple):
  """One example's result (batched: a leading batch axis on every field).

  Attributes:
    x_adv: the first adversarial example found, in component order; `x` where none was (and
      where the clean prediction is already wrong, which is not attacked).
    correct: whether the clean prediction is the label.
    first: the index in `COMPONENTS` of the component that broke the example, -1 if none.
    grad_zero: whether the input gradient of `ce_loss` at `x` is exactly zero everywhere.
    grad_nonfinite: whether that gradient holds a NaN or an infinity.
    loss_gain: the rise of the loss along APGD-CE's (first) trajectory, its best loss minus its
      loss at the start: zero when the ascent found nothing.
  """
  x_adv: jax.Array
  correct: jax.Array
  first: jax.Array
  grad_zero: jax.Array
  grad_nonfinite: jax.Array
  loss_gain: jax.Array


def _first_success(run, count, done, x_adv):
  """Runs `run(i) -> (candidate, fooled)` for `i = 0, 1, ...` below `count` while not `done`;
  the first fooling candidate replaces `x_adv`. Returns the new `(done, x_adv)`."""

  def unfinished(state):
    i, done, _ = state
    return (i < count) & ~done

  def trip(state):
    i, _, x_adv = state
    candidate, fooled = run(i)
    return i + 1, fooled, jnp.where(fooled, candidate, x_adv)

  _, done, x_adv = jax.lax.while_loop(unfinished, trip, (jnp.int32(0), done, x_adv))
  return done, x_adv


def auto_attack(logits_fn: LogitsFn, *, eps: float, ce_loss: LossFn, dlr_targeted_loss: LossFn,
                norm: str = "linf", num_steps: int = 100, num_restarts: int = 1,
                num_target_classes: int = 9, num_queries: int = 5000, p_init: float = 0.8,
                rho: float = 0.75, bounds: Bounds = None, snr_db: Optional[float] = None,
                unroll: Optional[bool] = None):
  """The standard AutoAttack ensemble, per example: APGD-CE, APGD-T, FAB-T, then Square.

  The defaults are the reference's standard version for Linf and L2: APGD-CE with 1 restart
  of 100 steps, APGD-T and FAB-T each with 1 restart of 100 steps per each of 9 target classes
  (FAB-T with the reference's `alpha_max = 0.1`, `eta = 1.05`, `beta = 0.9`), Square with 5000
  queries and `p_init = 0.8`, `rho = 0.75`. Component `c` of `COMPONENTS` draws from
  `fold_in(key, c)`: APGD's run `i` from `fold_in(fold_in(key, c), i)` (APGD-T's run `i`
  attacks the class ranked `i // num_restarts + 2` on the clean logits), FAB-T's run `i` (the
  class ranked `i + 2`, its restarts inside) from `fold_in(fold_in(key, c), i)`, Square from
  `fold_in(key, c)` itself.

  The losses are arguments since `soundjax.losses` is a sibling layer that attacks do not
  import: pass `losses.softmax_cross_entropy(logits_fn)` and `losses.dlr_targeted_loss(
  logits_fn)` (which takes `y = [label, target]`), or other losses of the same contracts.

  Args:
    logits_fn: `(params, x) -> logits` of one example, `[classes]` (at least 4 for APGD-T).
    eps: radius of the `norm` ball, >= 0; may be a traced scalar (one compile for a sweep).
    ce_loss: APGD-CE's `(params, x, y) -> scalar` for an integer label `y`; its input gradient
      at `x` is the one the diagnostics inspect.
    dlr_targeted_loss: APGD-T's `(params, x, [label, target]) -> scalar`.
    norm: "linf" or "l2".
    num_steps: APGD and FAB-T steps per run, >= 1.
    num_restarts: APGD runs per component (per target class for APGD-T), and FAB-T's restarts
      per target class, >= 1.
    num_target_classes: APGD-T's and FAB-T's targets, >= 1, at most `classes - 1` used.
    num_queries: Square's queries, >= 1.
    p_init: Square's initial window share, in (0, 1].
    rho: APGD's step-halving threshold, in [0, 1].
    bounds: optional `(lo, hi)` box for `x_adv` (widened to contain `x`), for every component.
    snr_db: optional floor on the SNR of the perturbation, in dB, for every component.
    unroll: APGD's and FAB-T's loop form (`apgd`).

  Returns:
    `ensemble(params, x, y, key) -> AutoAttackOutcome` for an integer label `y`; reduce a batch
    of outcomes with `robust_accuracy(outcome)`.

  Example:
    >>> ensemble = auto_attack(logits_fn, eps=0.002, bounds=(-1.0, 1.0),
    ...                        ce_loss=losses.softmax_cross_entropy(logits_fn),
    ...                        dlr_targeted_loss=losses.dlr_targeted_loss(logits_fn))
    >>> evaluate = jax.jit(lambda params, x, y, keys: robust_accuracy(
    ...     jax.vmap(ensemble, in_axes=(None, 0, 0, 0))(params, x, y, keys)))
  """
  checks.one_of("norm", norm, core.NORMS)
  checks.integer("num_restarts", num_restarts)
  checks.integer("num_target_classes", num_target_classes)
  for name, fn in (("logits_fn", logits_fn), ("ce_loss", ce_loss),
                   ("dlr_targeted_loss", dlr_targeted_loss)):
    checks.function(name, fn, _WHERE)

  def adversarial(params, v, label):
    return jnp.all(jnp.isfinite(v)) & (jnp.argmax(logits_fn(params, v)) != label)

  budget = dict(eps=eps, norm=norm, bounds=bounds, snr_db=snr_db)
  settings = dict(num_steps=num_steps, rho=rho, unroll=unroll, **budget)
  ce_run = apgd(ce_loss, is_adversarial=adversarial, return_trace=True, **settings)
  targeted_run = apgd(dlr_targeted_loss, **settings,
                      is_adversarial=lambda params, v, pair: adversarial(params, v, pair[0]))
  fab_run = fab_targeted(logits_fn, num_steps=num_steps, num_restarts=num_restarts,
                         unroll=unroll, **budget)
  square_run = square(logits_fn, num_queries=num_queries, p_init=p_init, **budget)

  def ensemble(params, x, y, key):
    y = checks.labels(y, shape=(), where=_WHERE, per_example=True)
    logits = logits_fn(params, x)
    if logits.ndim != 1:
      raise ValueError(f"{_WHERE}: logits_fn must return one example's logits [classes], got "
                       f"shape {logits.shape}")
    keys = [jax.random.fold_in(key, c) for c in range(len(COMPONENTS))]
    correct = jnp.argmax(logits) == y
    grad = jax.grad(ce_loss, argnums=1)(params, x, y)
    judged = lambda v: (v, adversarial(params, v, y))
    count = min(num_target_classes, logits.shape[0] - 1)
    targets = jax.lax.top_k(logits, count + 1)[1][1:]

    def ce_restart(i):
      return judged(ce_run(params, x, y, jax.random.fold_in(keys[0], i + 1))[0])

    def targeted(i):
      pair = jnp.stack([y, targets[i // num_restarts]])
      return judged(targeted_run(params, x, pair, jax.random.fold_in(keys[1], i)))

    def fab(i):
      pair = jnp.stack([y, targets[i]])
      return judged(fab_run(params, x, pair, jax.random.fold_in(keys[2], i)))

    # APGD-CE's first run attacks every example (its trajectory is a diagnostic); its restarts
    # and the later components run only while the example is unbroken.
    x_ce, trace = ce_run(params, x, y, jax.random.fold_in(keys[0], 0))
    done = ~correct | judged(x_ce)[1]
    x_adv, first = jnp.where(correct & done, x_ce, x), jnp.where(correct & done, 0, -1)
    runs = {"apgd-ce": (ce_restart, num_restarts - 1),
            "apgd-t": (targeted, count * num_restarts),
            "fab-t": (fab, count),
            "square": (lambda i: judged(square_run(params, x, y, keys[3])), 1)}
    for index, name in enumerate(COMPONENTS):
      run, trips = runs[name]
      if trips:  # no restarts to run: not traced, not compiled
        done, x_adv = _first_success(run, trips, done, x_adv)
        first = jnp.where(correct & done & (first < 0), index, first)
    return AutoAttackOutcome(
        x_adv=x_adv, correct=correct, first=first, grad_zero=jnp.all(grad == 0),
        grad_nonfinite=~jnp.all(jnp.isfinite(grad)),
        loss_gain=trace.best_loss - trace.losses[0])

  return ensemble


def robust_accuracy(outcome: AutoAttackOutcome) -> Dict[str, jax.Array]:
  """The ensemble's figures over a batch of outcomes (jnp scalars: callable inside `jit`).

  Keys: `clean` (clean accuracy); per component of `COMPONENTS`, the robust accuracy after
  it (cumulative, the reference's per-attack figure); `robust`, the ensemble's (worst-case)
  robust accuracy; and the masking diagnostics: `grad_zero_share` and `grad_nonfinite_share`
  (over all examples), `loss_gain` (APGD-CE's mean rise of the loss over the clean-correct
  examples, NaN if none), `no_gain_share` (their share whose loss never rose above the start)
  and `square_only`, the share of all examples that Square broke after
  every gradient attack failed (the classic sign of masking; the reference warns above 0.002).

  Args:
    outcome: `AutoAttackOutcome` with a leading batch axis (several batches concatenated fit).
  """
  share = lambda flags: jnp.mean(jnp.asarray(flags, jnp.float32))
  correct, first = jnp.asarray(outcome.correct), jnp.asarray(outcome.first)
  attacked = jnp.sum(correct)
  over_correct = lambda v: jnp.where(
      attacked > 0, jnp.sum(jnp.where(correct, v, 0)) / jnp.maximum(attacked, 1), jnp.nan)
  result = {"clean": share(correct)}
  for index, name in enumerate(COMPONENTS):
    result[name] = share(correct & ((first < 0) | (first > index)))
  result["robust"] = share(correct & (first < 0))
  result["grad_zero_share"] = share(outcome.grad_zero)
  result["grad_nonfinite_share"] = share(outcome.grad_nonfinite)
  gain = jnp.asarray(outcome.loss_gain)
  result["loss_gain"] = over_correct(gain)
  result["no_gain_share"] = over_correct(~(gain > 0))
  result["square_only"] = share(first == COMPONENTS.index("square"))
  return result
