"""Supervised training of a classifier: train state, one jitted step, and a resumable loop.

Batch `i` of the training stream and the dropout key of step `i` are pure functions of the seed
and `i`, and the whole train state (with, under model selection, the best state so far) is
checkpointed with orbax, so a run killed at any point and started again with the same command
ends with exactly the parameters, and selects exactly the model, of an uninterrupted run.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from flax.training import train_state
from jax.sharding import Mesh

from soundjax import checks, data, frontend, losses, models, parallel
from soundjax.training import plateau, selection
from soundjax.training.checkpoint import checkpoint_manager
from soundjax.training.checks import check_classifier
from soundjax.training.writer import MetricWriter
from soundjax.types import FrontEnd, LogitsFn, LossFn

# The scalar figures an evaluation may carry (besides labels, predictions and logits).
METRIC_NAMES = frozenset(selection.METRICS)


class TrainState(train_state.TrainState):
  """Flax train state plus BatchNorm statistics (an empty dict for models without BatchNorm)."""
  batch_stats: Any = None

  @property
  def variables(self) -> Dict[str, Any]:
    """The `variables` that `model.apply` (and every loss, attack and attribution) takes."""
    return {"params": self.params, "batch_stats": self.batch_stats}


@dataclasses.dataclass(frozen=True)
class Task:
  """What is trained: a model, the front end in front of it (or None) and the loss name.

  `head_weights` (one per head) makes it a multi-head task: the model returns a tuple of logits,
  `y` holds one label per head and the loss is their weighted sum (`losses.heads_loss_on_logits`).
  """
  model: nn.Module
  frontend: Optional[FrontEnd]
  loss: str
  head_weights: Optional[Tuple[float, ...]] = None

  def features(self, x: jax.Array) -> jax.Array:
    """Batched model input: the front end applied per example, or `x` itself."""
    return jax.vmap(self.frontend)(x) if self.frontend is not None else x

  def logits_fn(self) -> LogitsFn:
    """Per-example `(variables, x) -> logits` in inference mode, front end included."""
    return losses.model_logits(self.model, frontend=self.frontend)

  def loss_fn(self) -> LossFn:
    """Per-example `(variables, x, y) -> loss` in inference mode: what transforms differentiate."""
    if self.head_weights is not None:
      return losses.per_example_heads_loss(self.logits_fn(), self.loss, self.head_weights)
    return losses.per_example_loss(self.logits_fn(), self.loss)

  def loss_on_logits(self, label_smoothing: float = 0.0):
    """`(loss(logits, y), predict(logits))` of a batch, against labels smoothed by
    `label_smoothing` (see `losses.smoothed_loss_on_logits`)."""
    if self.head_weights is not None:
      return losses.heads_loss_on_logits(self.loss, self.head_weights, label_smoothing)
    return (losses.smoothed_loss_on_logits(self.loss, label_smoothing),
            losses.loss_on_logits(self.loss)[1])


def build_task(config: ml_collections.ConfigDict, num_classes: Union[int, Tuple[int, ...]]) -> Task:
  """The model, front end and loss a config names (one output for a sigmoid binary loss; one head
  per class count, weighted by `config.loss_weights`, for a tuple of them)."""
  if config.loss == "sigmoid_binary_cross_entropy":
    num_classes = 1
  model = models.get_model(config.model.name, num_classes=num_classes,
                           **config.model.get("kwargs", {}))
  front = config.get("frontend")
  log_mel = frontend.log_mel(**front) if front else None
  losses.loss_on_logits(config.loss)  # Fails early on an unknown loss name.
  weights = config.get("loss_weights")
  return Task(model=model, frontend=log_mel, loss=config.loss,
              head_weights=tuple(weights) if weights is not None else None)


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """optax optimiser `config.optimizer` (e.g. "adam", "sgd") with a staircase-decayed rate, and
  reduced further on plateaus of the selection metric when `config.reduce_on_plateau` is set
  (see `plateau`)."""
  schedule = optax.exponential_decay(
      config.learning_rate, transition_steps=config.get("lr_decay_steps", 1),
      decay_rate=config.get("lr_decay_rate", 1.0), staircase=True)
  tx = getattr(optax, config.optimizer)(schedule, **config.get("optimizer_kwargs", {}))
  spec = config.get("reduce_on_plateau")
  return plateau.with_plateau(tx, spec) if plateau.enabled(spec) else tx


def create_state(task: Task, tx: optax.GradientTransformation, x: np.ndarray,
                 key: jax.Array) -> TrainState:
  """Initialises parameters from an example batch `x` of raw inputs."""
  features = jax.eval_shape(task.features, jnp.asarray(x))
  # One compiled init: unjitted, every initializer would compile on its own (~100 compiles).
  init = jax.jit(lambda key: task.model.init(key, jnp.zeros(features.shape, features.dtype),
                                             train=False))
  variables = init(key)
  state = TrainState.create(apply_fn=task.model.apply, params=variables["params"], tx=tx,
                            batch_stats=variables.get("batch_stats", {}))
  # An array step (not flax's Python 0), so the first train step compiles for the same types as
  # every later one.
  return state.replace(step=jnp.zeros((), jnp.int32))


def make_train_step(task: Task, *, label_smoothing: float = 0.0):
  """Returns a jitted `step(state, x, y, key) -> (state, {"loss", "accuracy"})` (state donated).

  The step minimises the task's loss against labels smoothed by `label_smoothing` (see
  `losses.smoothed_loss_on_logits`); its "loss" is that smoothed loss.
  """
  loss_on_logits, predict = task.loss_on_logits(label_smoothing)

  def step(state: TrainState, x, y, key):
    def batch_loss(params):
      logits, updates = task.model.apply(
          {"params": params, "batch_stats": state.batch_stats}, task.features(x), train=True,
          mutable=["batch_stats"], rngs={"dropout": jax.random.fold_in(key, state.step)})
      return loss_on_logits(logits, y).mean(), (logits, updates)

    (loss, (logits, updates)), grads = jax.value_and_grad(batch_loss, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=updates.get("batch_stats", {}))
    return state, {"loss": loss, "accuracy": jnp.mean(predict(logits) == y)}

  return jax.jit(step, donate_argnums=0)


def make_predict(task: Task):
  """Returns a jitted `predict(variables, x) -> logits` for a batch in inference mode."""
  return jax.jit(lambda variables, x: task.model.apply(variables, task.features(x), train=False))


def evaluate(task: Task, variables, batches, predict_logits=None,
             mesh: Optional[Mesh] = None) -> Dict[str, Any]:
  """Loss, accuracy, labels and predictions of `variables` over an iterable of batches.

  Pass `predict_logits = make_predict(task)` when evaluating repeatedly, so it compiles once.
  Each batch is split over the devices of `mesh` (default: every device). With several processes,
  each passes its shard of every batch (`data.batches(..., shard=...)`, whose `"mask"` marks real
  rows) and every process gets the evaluation of all of them.
  """
  predict_logits = predict_logits or make_predict(task)
  mesh = mesh or parallel.batch_mesh()
  variables = parallel.replicate(variables, mesh)
  loss_on_logits, predict = task.loss_on_logits()
  labels, logits, size = [], [], None
  for batch in batches:
    count = len(batch["y"])
    # Pad every batch to the first one's size (rounded up to a multiple of the device count):
    # one compiled shape for all batches.
    size = size or parallel.round_up(count, mesh)
    x, y = (np.pad(a, [(0, size - count)] + [(0, 0)] * (a.ndim - 1)) for a in (batch["x"],
                                                                                batch["y"]))
    keep = np.zeros(size, bool)
    keep[:count] = batch.get("mask", True)
    # Labels and the rows to keep travel with the logits, so every process gets all processes'.
    x, y, keep = parallel.shard_batch((x, y, keep), mesh)
    # A tree map: a multi-head model's logits are a tuple of arrays.
    rows, y, keep = parallel.to_host((predict_logits(variables, x), y, keep))
    logits.append(jax.tree.map(lambda head, keep=keep: head[keep], rows))
    labels.append(y[keep])
  labels, logits = np.concatenate(labels), jax.tree.map(lambda *rows: np.concatenate(rows), *logits)
  predictions = np.asarray(predict(logits))
  return {"loss": float(np.mean(loss_on_logits(logits, labels))),
          "accuracy": float(np.mean(predictions == labels)),
          "labels": labels, "predictions": predictions, "logits": logits}


def training_mesh(settings: ml_collections.ConfigDict) -> Mesh:
  """The devices training splits each batch over: the first `num_devices` (None: all, of every
  process).

  Raises:
    ConfigError: fewer devices than `num_devices`, `num_devices` set in a multi-process run, or a
      batch size the devices cannot split evenly.
  """
  devices, wanted = jax.devices(), settings.get("num_devices")
  checks.require(wanted is None or wanted <= len(devices), "train.num_devices",
                        f"is {wanted}, but this run has {len(devices)} device(s).")
  checks.require(wanted is None or jax.process_count() == 1, "train.num_devices",
                 f"is {wanted}; leave it unset in a multi-process run (the mesh spans every "
                 "process's devices).")
  mesh = parallel.batch_mesh(devices[:wanted])
  checks.require(settings.batch_size % mesh.size == 0, "train.batch_size",
                        f"is {settings.batch_size}, which {mesh.size} devices cannot split "
                        "evenly; use a multiple of the device count (or set train.num_devices).")
  return mesh


# Extra figures of an evaluation (`evaluate`'s dict) on the selection split, by metric name, e.g.
# the sound event detectors' {"event_f": ..., "event_error_rate": ...}.
Scorer = Callable[[Dict[str, Any]], Dict[str, float]]


@dataclasses.dataclass
class TrainResult:
  """A trained (or restored) model: its task, its state and the state's test-set evaluation.

  `state` is the final state, or under model selection (`config.train.select_on`) the selected
  one, whose `step` is the step it was selected at.
  """
  task: Task
  state: TrainState
  evaluation: Dict[str, Any]


def evaluation_splits(step: int, settings: ml_collections.ConfigDict) -> List[str]:
  """The splits `train` evaluates after `step`.

  Without model selection, "test" every `eval_every` steps but the last (monitoring; the returned
  model's test figures come after the loop). With it, only the selection split `select_on`,
  every `eval_every` steps and at the last: the test set stays unseen until the model is chosen.
  """
  due, last = step % settings.eval_every == 0, step == settings.num_steps
  select_on = settings.get("select_on")
  if select_on is None:
    return ["test"] if due and not last else []
  return [select_on] if due or last else []


def train(config: ml_collections.ConfigDict, workdir: str, builder: Optional[Any] = None,
          scorer: Optional[Scorer] = None, task: Optional[Task] = None) -> TrainResult:
  """Trains `config.model` on `config.data`, resuming from the last checkpoint in `workdir`.

  With `config.train.select_on` naming a split (e.g. "valid"), that split is evaluated every
  `eval_every` steps and at the end, and the state with the best `select_metric` ("loss", the
  default, "accuracy", or a figure of `scorer`) on it is returned; its step is logged as
  `selected_step` in the "selected" row of `metrics.jsonl`.

  Args:
    config: a config with `seed`, `data`, `frontend`, `model`, `loss` and `train` fields (see
      `configs/common.py`); a dataset of events also needs `data.frame_targets`; optional
      `data.label` trains on another class-label feature, `data.exclude` leaves records out
      (see `data.batches`).
    workdir: where checkpoints, `metrics.jsonl` and TensorBoard files go.
    builder: an already prepared dataset builder; prepared from `config.data` when None.
    scorer: extra figures of each evaluation of the selection split (logged beside loss and
      accuracy), e.g. a detector's validation event F-score to select on.
    task: the model, front end and loss to train, when not the ones `config` names (e.g. a
      front end other than `frontend.log_mel`; `config.model` and `config.loss` are then only
      checked).

  Returns:
    The task, the final (or selected) state and its test-set evaluation.

  Raises:
    ConfigError: `config.train.select_on` names a split the dataset lacks, or `select_metric` a
      figure neither the evaluation nor the scorer gives.
  """
  check_classifier(config)
  builder = builder or data.prepare_config(config.data)
  settings, num_samples = config.train, config.data.get("num_samples")
  select_on, metric = settings.get("select_on"), settings.get("select_metric", "loss")
  if select_on is not None:
    splits = sorted(builder.info.splits)
    checks.require(select_on in splits, "train.select_on",
                          f"is {select_on!r}, a split {builder.name} lacks; it has {splits}.")
    checks.require(metric in ("loss", "accuracy") or scorer is not None, "train.select_metric",
                   f"is {metric!r}, which only a scorer passed to train gives; select on "
                   "'loss' or 'accuracy'.")
  mesh = training_mesh(settings)
  os.makedirs(workdir, exist_ok=True)
  label = config.data.get("label")
  task = task or build_task(config, data.num_classes(builder, label))
  # Held-out records (`data.exclude`, e.g. users) are left out of training and evaluation alike;
  # each process reads only its rows of every batch.
  reading = {"num_samples": num_samples, "frame_targets": config.data.get("frame_targets"),
             "label": label, "exclude": config.data.get("exclude"),
             "shard": grain.sharding.ShardByJaxProcess()}
  stream = data.batches(builder, "train", batch_size=settings.batch_size, seed=config.seed,
                        shuffle=True, num_epochs=None, drop_remainder=True, **reading)
  dropout_key = jax.random.key(config.seed)
  # XLA's RngBitGenerator compiles ~4x faster than threefry for the many initialisers of a model.
  init_key = jax.random.key(config.seed, impl="rbg")
  state = create_state(task, make_optimizer(settings), stream[0]["x"], init_key)
  best = selection.start(state) if select_on is not None else None

  manager = checkpoint_manager(workdir, settings)
  if manager.latest_step() is not None:
    state, best = selection.restore(manager, manager.latest_step(), state,
                                          selecting=best is not None)
  # Data parallel: the state on every device, each batch split over them (see `sharding`).
  state = parallel.replicate(state, mesh)
  start = int(state.step)
  writer = MetricWriter(workdir, start_step=start)
  eval_batches = {split: data.batches(builder, split, batch_size=settings.eval_batch_size,
                                      **reading)
                  for split in ["test"] + ([select_on] if select_on is not None else [])}
  train_step = make_train_step(task, label_smoothing=settings.get("label_smoothing", 0.0))
  predict_logits = make_predict(task)

  # A run that stopped early ends where it stopped, however often it is started again.
  end = start if plateau.stopped(best, start, settings) else settings.num_steps
  batches = stream.slice(slice(start, end)).to_iter_dataset()
  for step, batch in zip(tqdm.trange(start + 1, end + 1, desc="train", initial=start,
                                     total=settings.num_steps), batches):
    state, scalars = train_step(state, *parallel.shard_batch((batch["x"], batch["y"]), mesh),
                                dropout_key)
    if step % settings.log_every == 0 or step == settings.num_steps:
      scale = plateau.learning_rate_scale(state)
      writer.write(step, "train", {**jax.device_get(scalars),
                                   **({} if scale is None else {"lr_scale": scale})})
    for split in evaluation_splits(step, settings):
      result = evaluate(task, state.variables, eval_batches[split], predict_logits, mesh)
      if split == select_on and scorer is not None:
        result.update(scorer(result))
      writer.write(step, split, {k: result[k] for k in sorted(METRIC_NAMES.intersection(result))})
      if split == select_on:
        checks.require(metric in result, "train.select_metric",
                       f"is {metric!r}, which the scorer does not give; it gives "
                       f"{sorted(METRIC_NAMES.intersection(result))}.")
        best = selection.update(best, state, step, result[metric], metric)
        state = plateau.evaluated(state, result[metric], metric, settings.get("reduce_on_plateau"))
    stopping = plateau.stopped(best, step, settings)
    manager.save(step, args=selection.save_args(state, best),
                 force=step == settings.num_steps or stopping)
    if stopping:
      break
  manager.wait_until_finished()
  manager.close()

  last_step, state = int(state.step), state if best is None else best.state
  evaluation = evaluate(task, state.variables, eval_batches["test"], predict_logits, mesh)
  scalars = {k: evaluation[k] for k in ("loss", "accuracy")}
  # A run restarted after it ended has logged its last row already.
  if best is None and not writer.has(last_step, "test"):
    writer.write(last_step, "test", scalars)
  elif best is not None and not writer.has(last_step, "selected"):
    writer.write(last_step, "selected", {"selected_step": best.step,
                                         f"{select_on}_{metric}": best.score,
                                         **{f"test_{k}": v for k, v in scalars.items()}})
  writer.close()
  return TrainResult(task=task, state=state, evaluation=evaluation)
