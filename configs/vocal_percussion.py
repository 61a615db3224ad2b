"""Paper 2: deep embeddings for user-based amateur vocal percussion classification.

  soundjax --config=configs/vocal_percussion.py --workdir=runs/vp
  soundjax --config=configs/vocal_percussion.py:quick --workdir=runs/vp_quick
  soundjax --config=configs/vocal_percussion.py:avp_lvt --workdir=runs/vp_avp_lvt \
      --config.data.manual_dir=/path/to/AVP-LVT

Trains the embedding CNN at each label level of `levels` (the phoneme levels with two heads) from
every seed of `seeds` on the users not in `held_out_users`, with early stopping and rate cuts on
plateaus of the validation accuracy; embeds each held-out user's isolated (train) and improvised
(test) takes and fits that user's classifiers (KNN k = 3..11, logistic regression, random forest)
on the train-take embeddings against instrument labels, scored on the improvised take. The
engineered baselines (timbre features, feature selection) go through the same per-user
classifiers; saliency maps are the instrument models' input gradients.
"""

import ml_collections

from configs import common
from soundjax.experiments.vocal_percussion import robustness

# The published held-out users: AVP indices 8, 10, 18, 23 (Participant_9/11/19/24) and LVT
# indices 0, 6, 7, 13, the latter after AVP's 28 users in `avp_lvt`'s user index.
AVP_LVT_HELD_OUT = (8, 10, 18, 23, 28 + 0, 28 + 6, 28 + 7, 28 + 13)
# The synthetic study holds out 8 of its 28 users as published, at the same AVP and LVT indices.
SYNTH_HELD_OUT = (0, 6, 7, 8, 10, 13, 18, 23)

# The `arg`s get_config takes (`soundjax.experiments.load_config` lists them).
VARIANTS = ("", "quick", "avp_lvt")


def patch(sample_rate: int, **overrides) -> ml_collections.ConfigDict:
  """`features.patch_frontend` keyword arguments: the published 48 x 64 patch at 23 ms / 8 ms."""
  return ml_collections.ConfigDict({"sample_rate": sample_rate, "n_mels": 64, "num_frames": 48,
                                    "frame_seconds": 0.023, "hop_seconds": 0.008, **overrides})


def get_config(arg: str = ""):
  config = common.base_config()
  config.experiment = "vocal_percussion"
  config.seeds = (0, 1, 2)
  # 28 simulated users at 16 kHz (nothing above 7 kHz), 4 x 24 isolated and 48 improvised
  # utterances each; 0.4 s clips hold the 48 frames of a patch.
  config.data = common.data_config("synth_vocal_percussion", sample_rate=16000, clip_seconds=0.4,
                                   num_users=28, utterances_per_instrument=24,
                                   test_utterances=48, seed=0, augmentations=0)
  # The patch front end (not `frontend.log_mel`) is passed to training with the task.
  config.frontend = None
  config.patch = patch(16000)
  # BatchNorm's running statistics follow at momentum 0.9, not the published 0.99: an epoch here
  # is 15 steps (published: about 1200), and at 0.99 the statistics of a model stopped after a
  # few epochs are still mostly their initial values (measured: the heads' validation accuracy
  # peaked after one epoch at 0.13-0.33 for 4 instruments). `:avp_lvt` keeps 0.99.
  config.model = ml_collections.ConfigDict({"name": "embedding_cnn",
                                            "kwargs": {"embedding_dim": 32, "bn_momentum": 0.9}})
  config.loss = "softmax_cross_entropy"
  # Every label level of the paper; the phoneme models have two heads (onset, nucleus) whose
  # losses are weighted 0.6 / 0.4 as published.
  config.levels = ("instrument", "instrument_reduced", "syllable", "syllable_reduced", "phoneme",
                   "phoneme_reduced", "boxeme")
  config.phoneme_loss_weights = (0.6, 0.4)
  # Each level's changes to config.train, from the published train_deep.py: the Adam rates, and
  # boxeme's longer patience (published 20 epochs to stop, 10 to cut the rate; scaled here as
  # the other levels' 14 and 7 are, below).
  config.level_train = ml_collections.ConfigDict({
      "instrument": {"learning_rate": 3e-4}, "instrument_reduced": {"learning_rate": 3e-4},
      "syllable": {"learning_rate": 5e-4}, "syllable_reduced": {"learning_rate": 5e-4},
      "phoneme": {"learning_rate": 1e-3}, "phoneme_reduced": {"learning_rate": 1e-3},
      "boxeme": {"learning_rate": 5e-4, "early_stopping_patience": 9,
                 "reduce_on_plateau": {"patience": 4}}})
  config.held_out_users = SYNTH_HELD_OUT
  # Published: batch 128, early stopping on validation accuracy after 14 epochs without
  # improvement, the rate cut by 10 after 7 (Keras' callbacks; `training.plateau` counts
  # evaluations, here one per epoch). The synthetic study's 21 models must fit in about an hour
  # on 2 CPU cores, so it stops after 6 stale epochs and cuts after 3 (`:avp_lvt` keeps the
  # published patience). No split here is a validation set of the embedding users, except the
  # "test" split read by training: with the held-out users excluded it holds only the training
  # users' improvised takes, records never trained on and never used by the per-user
  # evaluation, so the best state by its accuracy (the heads' mean for phonemes) is selected.
  # 20 users x 96 records = 15 steps an epoch; at most 450 steps (30 epochs; 0.44 s a step on
  # 2 CPU cores).
  config.train.update(batch_size=128, num_steps=450, eval_every=15, eval_batch_size=256,
                      checkpoint_every=60, log_every=50, select_on="test",
                      select_metric="accuracy", early_stopping_patience=6,
                      reduce_on_plateau={"patience": 3})
  # Per-user classifiers (names of `vocal_percussion.classifiers.METHODS`) and the published
  # transductive z-scoring (statistics over a user's train and test features).
  config.classifiers = ml_collections.ConfigDict({
      "methods": ("knn_3", "knn_5", "knn_7", "knn_9", "knn_11", "logistic_regression",
                  "random_forest"),
      "transductive": True})
  # Engineered baselines: timbre (`baselines.TIMBRE_SETTINGS` key: "avp" is 32-d) and feature
  # selection (the 258-d vector ranked by random-forest permutation importance on the training
  # users' records at `selection_label`, top `num_features` kept), capped at
  # `max_selection_records` records (every n-th) to bound the ranking's time.
  config.baselines = ml_collections.ConfigDict({
      "timbre": "avp", "feature_selection": True, "selection_label": "instrument",
      "num_features": 32, "num_trees": 200, "num_repeats": 10, "max_selection_records": 4000,
      "gmm_hmm": True})
  # Saliency: |d logit(predicted instrument) / d patch| of the instrument models, averaged over
  # `clips_per_instrument` held-out isolated-take clips per instrument and over seeds.
  config.saliency = ml_collections.ConfigDict({"clips_per_instrument": 16})
  config.embed_batch_size = 256
  # Beyond the paper: Linf PGD on the held-out users' improvised-take patches against each
  # model's own loss, scored by the per-user classifiers (`vocal_percussion.robustness`; None:
  # off). The first 16 improvised clips of each user bound its time.
  config.robustness = ml_collections.ConfigDict({**robustness.DEFAULTS, "clips_per_user": 16})

  if arg == "quick":
    # 6 users (2 held out), 2 levels, 1 seed, 32 x 32 patches, 60 steps: about a minute on 2
    # CPU cores.
    config.seeds = (0,)
    config.data.settings.update(num_users=6, utterances_per_instrument=6, test_utterances=12)
    config.held_out_users = (0, 3)
    config.levels = ("instrument", "syllable")
    config.patch.update(n_mels=32, num_frames=32)
    config.model.kwargs = {"embedding_dim": 16, "bn_momentum": 0.9}
    config.train.update(batch_size=32, num_steps=60, eval_every=30, checkpoint_every=30,
                        log_every=20, eval_batch_size=64)
    for level in config.levels:
      config.level_train[level].learning_rate = 3e-3
    # 16-d like the embeddings: the LVT timbre vector and 16 selected features.
    config.baselines.update(timbre="lvt", num_trees=20, num_repeats=2, num_features=16)
    config.saliency.clips_per_instrument = 4
    config.embed_batch_size = 64
    config.robustness.update(clips_per_user=6, batch_size=64)
  elif arg == "avp_lvt":
    # Published: 44.1 kHz, the code's 345-sample hop, 10 augmented copies per isolated-take
    # utterance, 8 held-out users, batch 128, 32-d embeddings (published: 16-d for LVT's users).
    config.data = common.data_config("avp_lvt", sample_rate=44100, clip_seconds=0.4,
                                     augmentations=10)
    config.patch = patch(44100, hop_seconds=345 / 44100)
    config.model.kwargs.bn_momentum = 0.99
    config.held_out_users = AVP_LVT_HELD_OUT
    # ~40 users x ~350 utterances x 11 copies / 128: ~1200 steps an epoch; at most 100 epochs,
    # with the published patience (epochs: 14 to stop and 7 to cut, boxeme 20 and 10).
    config.train.update(num_steps=120000, eval_every=1200, checkpoint_every=1200,
                        early_stopping_patience=14, reduce_on_plateau={"patience": 7})
    config.level_train.boxeme.update(early_stopping_patience=20,
                                     reduce_on_plateau={"patience": 10})
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of configs/vocal_percussion.py; use '', 'quick' "
                     "or 'avp_lvt'.")
  return config
