"""The per-user protocol on embeddings and engineered features, and the saliency maps.

The held-out users' records are read once (`Records`); each trained model embeds them (jit + vmap
of the per-example `embedding_fn`, in chunks), and `classifiers.per_user_accuracy` fits each
user's classifiers on that user's train-take features against instrument labels and scores
their improvised take. A figure set (`scores`) holds every user's accuracy per method and the
published aggregates; `mean_std` averages figure sets over seeds.
"""

import dataclasses
from typing import Any, Dict, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from soundjax import attribution, data, losses, models, parallel, report, training
from soundjax.experiments.vocal_percussion import baselines, classifiers, setup


@dataclasses.dataclass(frozen=True)
class Records:
  """Records of some users, both splits: audio and the fields the protocol reads.

  Attributes:
    audio: `[n, samples]` float32.
    user: `[n]` user indices.
    instrument: `[n]` the evaluation labels.
    is_train: `[n]` True for a train-split (isolated take) record, False for the test split.
  """
  audio: np.ndarray
  user: np.ndarray
  instrument: np.ndarray
  is_train: np.ndarray


def _held_out(builder, users: Sequence[int]):
  """`(split, record)` of every record of `users`, train split first, in stored order."""
  wanted = set(int(u) for u in users)
  for split in ("train", "test"):
    source = data.split_source(builder, split)
    for index in range(len(source)):
      record = source[index]
      if int(record["user"]) in wanted:
        yield split, record


def read_records(builder, users: Sequence[int]) -> Records:
  """Every record of `users` in the train and test splits, train first, in stored order."""
  audio, user, instrument, is_train = [], [], [], []
  for split, record in _held_out(builder, users):
    audio.append(np.asarray(record["audio"], np.float32))
    user.append(int(record["user"]))
    instrument.append(int(record[setup.EVALUATION_LABEL]))
    is_train.append(split == "train")
  return Records(np.stack(audio), np.array(user), np.array(instrument), np.array(is_train))


def read_labels(builder, users: Sequence[int], level: str) -> np.ndarray:
  """The labels of `level` (`[n]`, or `[n, 2]` for a two-head level) of `read_records`' rows."""
  heads = setup.HEADS[level]
  return np.array([[int(record[h]) for h in heads] if setup.two_headed(level)
                   else int(record[heads]) for _, record in _held_out(builder, users)], np.int32)


def selection_features(builder, config: ml_collections.ConfigDict):
  """The 258-d engineered features and `selection_label` labels of the embedding users' train
  records (every n-th, at most `max_selection_records`), for ranking the features."""
  held_out = set(int(u) for u in config.held_out_users)
  source = data.split_source(builder, "train")
  kept = [i for i in range(len(source)) if int(source[i]["user"]) not in held_out]
  stride = -(-len(kept) // config.baselines.max_selection_records)
  rate = sample_rate(builder)
  rows, labels = [], []
  for index in kept[::stride]:
    record = source[index]
    rows.append(baselines.engineered_features(record["audio"], rate))
    labels.append(int(record[config.baselines.selection_label]))
  return np.stack(rows), np.array(labels)


def sample_rate(builder) -> float:
  """The prepared set's audio rate in Hz."""
  return float(builder.builder_config.sample_rate)


def scores(features: np.ndarray, records: Records,
           config: ml_collections.ConfigDict, seed: int) -> Dict[str, Any]:
  """One figure set: per-user accuracies of each method and the participant- and boxeme-wise
  aggregates, with the published "knn" (the mean over k) when KNN methods are run."""
  return figures(classifiers.per_user_accuracy(
      features, records.instrument, records.user, records.is_train,
      methods=tuple(config.classifiers.methods), seed=seed,
      transductive=config.classifiers.transductive))


def figures(result: classifiers.UserAccuracies) -> Dict[str, Any]:
  """The figure set of per-user accuracies (of `classifiers` or of the `recogniser`)."""
  participant, boxeme = result.participant_wise, result.boxeme_wise
  if any(m in classifiers.KNN_METHODS for m in result.methods):
    participant["knn"] = classifiers.average_knn(participant)
    boxeme["knn"] = classifiers.average_knn(boxeme)
  return {"users": [int(u) for u in result.users],
          "num_test": [int(n) for n in result.num_test],
          "per_user": {m: result.accuracy[:, i].tolist() for i, m in enumerate(result.methods)},
          "participant_wise": participant, "boxeme_wise": boxeme}


def mean_std(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
  """Mean and (population) std over runs of their participant- and boxeme-wise figures."""
  return report.mean_std([{key: run[key] for key in ("participant_wise", "boxeme_wise")}
                          for run in runs])


def embedder(model: models.EmbeddingCNN, config: ml_collections.ConfigDict):
  """The jitted batched `embed(variables, audio) -> [batch, dim]` of a level's model: built once
  per level, so every seed's model runs the same compiled program."""
  fn = models.embedding_fn(model, frontend=setup.patch_frontend(config))
  return jax.jit(jax.vmap(fn, in_axes=(None, 0)))


def embed(embed_fn, variables, audio: np.ndarray, batch_size: int) -> np.ndarray:
  """Embeddings of every clip, in chunks of `batch_size`."""
  return np.asarray(parallel.chunked(embed_fn, batch_size, variables)(audio), np.float64)


def timbre_features(records: Records, config: ml_collections.ConfigDict, rate: float):
  """The timbre vectors of every record (`baselines.TIMBRE_SETTINGS[config.baselines.timbre]`)."""
  num_mfcc, deltas = baselines.TIMBRE_SETTINGS[config.baselines.timbre]
  return np.stack([baselines.timbre_features(a, rate, num_mfcc=num_mfcc, deltas=deltas)
                   for a in records.audio])


def patches(config: ml_collections.ConfigDict, audio: np.ndarray) -> np.ndarray:
  """The normalised patches (`config.patch`) of every clip, in chunks of `embed_batch_size`."""
  fn = jax.jit(jax.vmap(setup.patch_frontend(config)))
  return parallel.chunked(fn, config.embed_batch_size)(audio)


def saliency_clips(records: Records, per_instrument: int) -> np.ndarray:
  """Indices of the first `per_instrument` isolated-take records of each instrument."""
  picked = [np.flatnonzero(records.is_train & (records.instrument == k))[:per_instrument]
            for k in np.unique(records.instrument)]
  return np.concatenate(picked)


def make_saliency(model: models.EmbeddingCNN):
  """The jitted batched `saliency(variables, patches, keys) -> (|d logit_pred / d patch|, pred)`.

  The class is the model's own prediction, so the map says what made it choose that class; the
  attribution library differentiates a per-example `(params, x, y)` score, here the logit of `y`.
  """
  logits_fn = losses.model_logits(model)
  score = lambda variables, x, y: logits_fn(variables, x)[y]
  attribute = attribution.abs_gradient(score)

  def batch(variables, patches, keys):
    predicted = jnp.argmax(jax.vmap(logits_fn, in_axes=(None, 0))(variables, patches), axis=-1)
    maps = jax.vmap(attribute, in_axes=(None, 0, 0, 0))(variables, patches, predicted, keys)
    return maps, predicted

  return jax.jit(batch)


def saliency_maps(saliency_fn, result: training.TrainResult, patches: np.ndarray,
                  instruments: np.ndarray, key: jax.Array) -> Dict[str, Any]:
  """Mean |gradient| per true instrument (`[instruments, frames, mels]`) and the predictions."""
  keys = jax.random.split(key, len(patches))
  maps, predicted = saliency_fn(result.state.variables, jnp.asarray(patches), keys)
  maps = np.asarray(maps)
  classes = np.unique(instruments)
  return {"maps": np.stack([maps[instruments == k].mean(axis=0) for k in classes]),
          "accuracy": float(np.mean(np.asarray(predicted) == instruments))}
