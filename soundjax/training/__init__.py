"""Supervised training with resume: the train state, one jitted step, the loop, checkpoints,
model selection on a held-out split, the metric writer and the config checks.

`train(config, workdir)` is the entry point; it returns the task, the final (or selected) state
and its test-set evaluation, and `state.variables` is what every loss, attack and attribution
takes.
"""

from soundjax.training.checks import check_classifier
from soundjax.training.loop import (
                                    Scorer,
                                    Task,
                                    TrainResult,
                                    TrainState,
                                    build_task,
                                    create_state,
                                    evaluate,
                                    make_optimizer,
                                    make_predict,
                                    make_train_step,
                                    train,
)
from soundjax.training.writer import MetricWriter, read_metrics

__all__ = ["MetricWriter", "Scorer", "Task", "TrainResult", "TrainState", "build_task",
           "check_classifier", "create_state", "evaluate", "make_optimizer", "make_predict",
           "make_train_step", "read_metrics", "train"]
