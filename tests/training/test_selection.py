"""Model selection: which score wins, copies that outlive donation, and the checkpoint format."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from soundjax import checks
from soundjax.training import selection as model_selection


@pytest.mark.parametrize("score, best, metric, expected", [
    (0.5, None, "loss", True),          # the first evaluation always wins
    (math.nan, None, "loss", True),
    (0.4, 0.5, "loss", True),
    (0.6, 0.5, "loss", False),
    (0.5, 0.5, "loss", False),          # a tie keeps the earlier step
    (0.6, 0.5, "accuracy", True),
    (0.4, 0.5, "accuracy", False),
    (0.5, 0.5, "accuracy", False),
    (math.nan, 0.5, "loss", False),     # a diverged model never wins ...
    (math.nan, 0.5, "accuracy", False),
    (9.0, math.nan, "loss", True),      # ... and anything beats it
])
def test_improves(score, best, metric, expected):
  assert model_selection.improves(score, best, metric) is expected


def _state(value):
  return {"w": jnp.full((3,), value, jnp.float32), "step": jnp.asarray(int(value), jnp.int32)}


def test_update_keeps_a_copy_that_outlives_a_donating_step():
  step = jax.jit(lambda s: jax.tree.map(lambda x: x + 1, s), donate_argnums=0)
  best = model_selection.update(model_selection.start(_state(0)), _state(1), 1, 0.3, "loss")
  state = best.state
  best = model_selection.update(best, state, 2, 0.2, "loss")
  step(state)  # Donates (and on accelerators invalidates) `state`'s buffers.
  np.testing.assert_array_equal(best.state["w"], [1.0, 1.0, 1.0])
  assert (best.step, best.score) == (2, 0.2)
  assert model_selection.update(best, _state(5), 3, 0.25, "loss") is best


def _manager(path):
  return ocp.CheckpointManager(str(path), options=ocp.CheckpointManagerOptions(max_to_keep=2))


def test_checkpoint_holds_the_state_and_the_best_state(tmp_path):
  best = model_selection.Best(state=_state(2), step=2, score=0.125)
  manager = _manager(tmp_path)
  manager.save(4, args=model_selection.save_args(_state(4), best))
  manager.wait_until_finished()
  state, restored = model_selection.restore(_manager(tmp_path), 4, _state(0), selecting=True)
  np.testing.assert_array_equal(state["w"], _state(4)["w"])
  np.testing.assert_array_equal(restored.state["w"], best.state["w"])
  assert (restored.step, restored.score) == (2, 0.125)


@pytest.mark.parametrize("saved_with_selection", [True, False])
def test_resuming_with_the_other_setting_fails_saying_so(tmp_path, saved_with_selection):
  best = model_selection.start(_state(0)) if saved_with_selection else None
  manager = _manager(tmp_path)
  manager.save(1, args=model_selection.save_args(_state(1), best))
  manager.wait_until_finished()
  word = "with" if saved_with_selection else "without"
  with pytest.raises(checks.ConfigError,
                     match=f"config.train.select_on .* step 1 .* was saved {word} model selection"):
    model_selection.restore(_manager(tmp_path), 1, _state(0),
                            selecting=not saved_with_selection)
