"""Orbax checkpointing of the train state: where checkpoints go and how many are kept.

In a multi-process run every process makes the same manager on the same (shared) folder and calls
it at the same steps: orbax synchronises the processes, each writes its own shards of the global
arrays, and process 0 (orbax's primary host, its default) writes the replicated ones and the
metadata and finalises each step.
"""

import os

import ml_collections
import orbax.checkpoint as ocp


def checkpoint_manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """Keeps the last `keep_checkpoints` states, saved every `checkpoint_every` steps."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints,
                                           save_interval_steps=config.checkpoint_every))
