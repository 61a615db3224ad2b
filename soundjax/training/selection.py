"""Model selection: the training state that scores best on a held-out split, kept while training.

`train.train` evaluates the split named by `config.train.select_on` every `eval_every` steps and at
the end, and keeps a copy of the best state. That copy, its step and its score are saved in the
same orbax checkpoint as the training state (items "state", "best" and "selection"), so the
checkpoint of step `i` holds exactly the best of the steps up to `i`: a run killed and resumed
from it goes on as an uninterrupted run did and selects the same model.
"""

import dataclasses
import math
import os
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from soundjax import checks

# Metric name -> +1 when lower is better, -1 when higher is better. "loss" and "accuracy" come
# with every evaluation; the others from a scorer passed to `train` (the sound event detectors'
# event-based F-score and error rate on the selection split).
METRICS = {"loss": 1.0, "accuracy": -1.0, "event_f": -1.0, "event_error_rate": 1.0}


@dataclasses.dataclass(frozen=True)
class Best:
  """The best state evaluated so far.

  Attributes:
    state: a copy of the training state at `step` (never donated to a train step).
    step: the step it was evaluated at; None before the first evaluation.
    score: its metric on the selection split; None before the first evaluation.
  """
  state: Any
  step: Optional[int] = None
  score: Optional[float] = None


def _copy(state: Any) -> Any:
  # Fresh buffers: the train step donates (and so invalidates) the buffers of the state it takes.
  return jax.tree.map(jnp.copy, state)


def start(state: Any) -> Best:
  """Nothing evaluated yet; the state is kept only to give the checkpoint its structure."""
  return Best(state=_copy(state))


def improves(score: float, best: Optional[float], metric: str) -> bool:
  """Whether `score` beats `best` (None: nothing yet). NaN beats nothing, and anything beats NaN.

  Ties keep the earlier step, as a strict comparison of the same scores always does.
  """
  if best is None or math.isnan(best):
    return True
  return not math.isnan(score) and METRICS[metric] * score < METRICS[metric] * best


def update(best: Best, state: Any, step: int, score: float, metric: str) -> Best:
  """`best`, or the given state if its `score` (of `metric`) improves on it."""
  if improves(score, best.score, metric):
    return Best(state=_copy(state), step=int(step), score=float(score))
  return best


def save_args(state: Any, best: Optional[Best]):
  """Orbax save arguments: the training state alone, or it with the best state (`best` given)."""
  if best is None:
    return ocp.args.StandardSave(state)
  return ocp.args.Composite(state=ocp.args.StandardSave(state),
                            best=ocp.args.StandardSave(best.state),
                            selection=ocp.args.JsonSave({"step": best.step, "score": best.score}))


def restore(manager: ocp.CheckpointManager, step: int, state: Any,
            selecting: bool) -> Tuple[Any, Optional[Best]]:
  """The training state and (when `selecting`) the best state saved at `step`.

  Args:
    manager: the manager that saved the checkpoint with `save_args`.
    step: the checkpoint's step.
    state: a training state giving the structure of both states.
    selecting: whether the run selects a model, i.e. saved its checkpoints with a best state.

  Raises:
    ConfigError: the checkpoint was saved by a run that did (or did not) select a model while this
      one does not (or does).
  """
  saved = os.path.isdir(os.path.join(str(manager.directory), str(step), "selection"))
  checks.require(
      saved == selecting, "train.select_on",
      f"is {'unset' if saved else 'set'}, but the checkpoint of step {step} in "
      f"{manager.directory} was saved {'with' if saved else 'without'} model selection; resume "
      f"it with config.train.select_on {'set' if saved else 'unset'} as before, or use a new "
      "workdir.")
  if not selecting:
    return manager.restore(step, args=ocp.args.StandardRestore(state)), None
  items = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(state), best=ocp.args.StandardRestore(state),
      selection=ocp.args.JsonRestore()))
  selection: Dict[str, Any] = items["selection"]
  return items["state"], Best(state=items["best"], step=selection["step"],
                              score=selection["score"])
