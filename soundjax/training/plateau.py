"""Learning-rate reduction on a plateau of the selection metric, and early stopping.

Keras' `ReduceLROnPlateau` and `EarlyStopping` callbacks (Paper 2 trains with both, on the
validation accuracy), counted in evaluations of the selection split rather than epochs:

- `train.reduce_on_plateau = {"patience": p, "factor": f, "min_delta": d}` (off while `p` is
  None, e.g. `--config.train.reduce_on_plateau.patience=3` turns it on) multiplies the
  optimiser's updates by `f` once the metric has not improved by more than `d` for `p`
  evaluations (optax's `contrib.reduce_on_plateau`, fed one value per evaluation);
- `train.early_stopping_patience = p` ends training once the best state is `p` evaluations old.

The plateau's counters and scale live in the optimiser state, so they are checkpointed with it and
a resumed run reduces the rate exactly where an uninterrupted one does; early stopping depends on
the step and the selected step only, both checkpointed too.
"""

from typing import Any, NamedTuple, Optional

import jax
import ml_collections
import optax
from optax import contrib

from soundjax.training import selection

# Keras' defaults (`ReduceLROnPlateau(factor=0.1, min_delta=1e-4)`), which Paper 2 keeps.
DEFAULTS = {"factor": 0.1, "min_delta": 1e-4}


class PlateauState(NamedTuple):
  """The optimiser state of `with_plateau`: the wrapped optimiser's and the plateau's."""
  inner: Any
  plateau: contrib.ReduceLROnPlateauState


def enabled(spec: Optional[ml_collections.ConfigDict]) -> bool:
  """Whether `train.reduce_on_plateau` is on: given, with a patience (None: off)."""
  return bool(spec) and spec.get("patience") is not None


def _plateau(spec: ml_collections.ConfigDict) -> optax.GradientTransformationExtraArgs:
  spec = {**DEFAULTS, **dict(spec)}
  # One value per evaluation (accumulation 1); an absolute tolerance as Keras' `min_delta`.
  return contrib.reduce_on_plateau(factor=spec["factor"], patience=spec["patience"], rtol=0.0,
                                   atol=spec["min_delta"], accumulation_size=1)


def with_plateau(tx: optax.GradientTransformation,
                 spec: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """`tx` whose updates are multiplied by the plateau's current scale (1 until a plateau).

  The train step only applies the scale; `evaluated` advances the plateau's counters.
  """
  plateau = _plateau(spec)

  def init(params):
    return PlateauState(tx.init(params), plateau.init(params))

  def update(updates, state: PlateauState, params=None):
    updates, inner = tx.update(updates, state.inner, params)
    scale = state.plateau.scale
    return jax.tree.map(lambda u: scale * u, updates), PlateauState(inner, state.plateau)

  return optax.GradientTransformation(init, update)


def evaluated(state: Any, score: float, metric: str,
              spec: Optional[ml_collections.ConfigDict]) -> Any:
  """The train state after an evaluation of the selection split scored `score` on `metric`.

  Args:
    state: the train state, whose `opt_state` is a `PlateauState` when `spec` is given.
    score: the evaluation's `metric`.
    metric: a name of `selection.METRICS` (lower or higher is better).
    spec: `train.reduce_on_plateau`; off (None, or no patience): the state is returned
      unchanged.
  """
  if not enabled(spec):
    return state
  # optax minimises: a metric where higher is better is negated.
  value = selection.METRICS[metric] * score
  _, plateau = _plateau(spec).update((), state.opt_state.plateau, value=value)
  return state.replace(opt_state=state.opt_state._replace(plateau=plateau))


def learning_rate_scale(state: Any) -> Optional[float]:
  """The plateau's current factor on the learning rate, or None without a plateau."""
  opt_state = state.opt_state
  return float(opt_state.plateau.scale) if isinstance(opt_state, PlateauState) else None


def stopped(best: Optional[selection.Best], step: int,
            settings: ml_collections.ConfigDict) -> bool:
  """Whether early stopping ends training at `step`: the selected state is at least
  `early_stopping_patience` evaluations (of `eval_every` steps) older than `step`."""
  patience = settings.get("early_stopping_patience")
  if not patience or best is None or best.step is None:
    return False
  return step - best.step >= patience * settings.eval_every
