"""Sound event detection benchmarks: the detectors' training step and PGD, and scoring a
2,000-clip test split against sed_eval.

Usage: python scripts/bench_sed.py [--only GROUP ...] [--tiny | --full] [--json out.json]
(or python scripts/bench.py --only sed). Sizes below are --full's; the default's are smaller.

`train-step` times the jitted train step (`soundjax.training.make_train_step`, Adam) of the
published CRNN with memory-controlled attention (width 50) against the CRNN without it (the
reference) at batch 32 (8 by default) on 10 s clips at 16 kHz through the published front end
(500 frames of 40 min-max scaled mels), and `attack` times 10-step PGD under an SNR floor on the
waveform of the attention model, as the SED experiment runs it
(`experiments.sed.evaluate.make_attack`), at batch 8 (2 by default).

The scoring groups build an URBAN-SED-like test split (2,000 clips of 10 s, 500 by default; 10
classes, 1-9 reference events of 0.5-4 s per clip; the estimates are the references jittered,
some dropped, some relabelled, plus insertions; all from one numpy seed) and time, interleaved and
repeated (medians):
- `event-based`: `metrics.sed.event_based` against sed_eval's `EventBasedMetrics` (0.25 s onset
  collar, offsets not evaluated: the setting of the SED papers);
- `segment-based`: `metrics.sed.segment_based` against `SegmentBasedMetrics` (1 s segments);
- `psds`: `metrics.sed.psds_from_probabilities`, PSDS1 and PSDS2, on [clips x 500 frames x 10
  classes] probabilities decoded at 50 thresholds; `psds-eval`: the same against psds_eval on a
  subset of the clips, when psds_eval (and pandas) can be imported.
sed_eval is fed as its documentation does, one `evaluate(reference, estimated)` per file, then
`results()`; its `MetaDataContainer`s are built before the clock starts (as if loaded from files),
while soundjax's time includes checking and converting the Python event lists. Every figure of the
two results (overall, class-wise, class-wise averages) is compared and the largest difference
noted; the PSDS values are compared the same way.
"""

import functools
import sys
import warnings

import benchlib
import jax
import jax.numpy as jnp
import numpy as np
import optax
import psds_eval_compat
from scipy import ndimage

from configs import sed_attention
from soundjax import frontend, models, training
from soundjax.experiments.sed import evaluate
from soundjax.metrics import sed

CLIPS = {"tiny": 20, "default": 500, "full": 2000}
SECONDS = 10.0
LABELS = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
          "engine_idling", "gun_shot", "jackhammer", "siren", "street_music")  # URBAN-SED's
HOP = 0.02  # 500 frames per clip, as the CRNN baselines' 50 frames/s
FRAMES = int(round(SECONDS / HOP))
THRESHOLDS = np.arange(1 / 100, 1, 1 / 50)  # DCASE task 4's 50: 0.01, 0.03, ..., 0.99
# psds_eval's pandas joins take seconds per operating point on all clips.
PSDS_EVAL_CLIPS = {"tiny": 5, "default": 20, "full": 100}
EVENT_SETTINGS = dict(t_collar=0.25, evaluate_onset=True, evaluate_offset=False)
SEGMENT_SETTINGS = dict(time_resolution=1.0)


def _reference_events(rng: np.random.Generator) -> list:
  """1-9 events of 0.5-4 s; one class's events never overlap (psds_eval rejects that)."""
  events, count = [], rng.integers(1, 10)
  while len(events) < count:
    length = rng.uniform(0.5, 4.0)
    onset = rng.uniform(0.0, SECONDS - length)
    label = LABELS[rng.integers(len(LABELS))]
    if not any(other == label and onset < off and on < onset + length
               for on, off, other in events):
      events.append((onset, onset + length, label))
  return sorted(events)


def _estimated_events(rng: np.random.Generator, reference: list) -> list:
  """A system's view: 15 % missed, 10 % relabelled, onsets jittered by 0.15 s (std, so some fall
  outside the collar), offsets by 0.3 s, and 0.6 insertions per clip on average."""
  events = []
  for onset, offset, label in reference:
    if rng.random() < 0.15:
      continue
    if rng.random() < 0.1:
      label = LABELS[rng.integers(len(LABELS))]
    onset = float(np.clip(onset + rng.normal(0.0, 0.15), 0.0, SECONDS - 0.1))
    offset = float(np.clip(offset + rng.normal(0.0, 0.3), onset + 0.1, SECONDS))
    events.append((onset, offset, label))
  for _ in range(rng.poisson(0.6)):
    length = rng.uniform(0.3, 3.0)
    onset = rng.uniform(0.0, SECONDS - length)
    events.append((onset, onset + length, LABELS[rng.integers(len(LABELS))]))
  return sorted(events)


@functools.lru_cache(maxsize=None)
def make_test_split(clips: int, seed: int = 0):
  """`(reference, estimated)`: `{filename: [(onset, offset, label), ...]}` for `clips` clips."""
  rng = np.random.default_rng(seed)
  reference, estimated = {}, {}
  for clip in range(clips):
    name = f"soundscape_test_{clip:04d}.wav"
    reference[name] = _reference_events(rng)
    estimated[name] = _estimated_events(rng, reference[name])
  return reference, estimated


def frame_probabilities(estimated: dict, seed: int = 1) -> np.ndarray:
  """[clips, frames, classes] float32 scores a model might give: each estimated event at a
  confidence of 0.55-1 with 0.1 s ramps, plus noise smooth over 0.2-0.5 s."""
  rng = np.random.default_rng(seed)
  index = {label: c for c, label in enumerate(LABELS)}
  clips = len(estimated)
  target = np.zeros((clips, FRAMES, len(LABELS)), np.float32)
  for clip, events in enumerate(estimated.values()):
    for onset, offset, label in events:
      start, stop = int(onset / HOP), max(int(onset / HOP) + 1, int(offset / HOP))
      target[clip, start:stop, index[label]] = rng.uniform(0.55, 1.0)
  noise = np.repeat(rng.random((clips, FRAMES // 10, len(LABELS)), np.float32), 10, axis=1)
  scores = (ndimage.uniform_filter1d(target, 5, axis=1, mode="nearest")
            + 0.35 * ndimage.uniform_filter1d(noise, 15, axis=1, mode="nearest"))
  return np.clip(scores, 0.0, 1.0).astype(np.float32)


def _sed_eval_metric(kind: str, containers: list) -> dict:
  """sed_eval's results(), evaluated file by file as its documentation does."""
  import sed_eval  # pylint: disable=g-import-not-at-top

  if kind == "event":
    metric = sed_eval.sound_event.EventBasedMetrics(event_label_list=list(LABELS),
                                                    **EVENT_SETTINGS)
  else:
    metric = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=list(LABELS),
                                                      **SEGMENT_SETTINGS)
  for reference, estimated in containers:
    metric.evaluate(reference_event_list=reference, estimated_event_list=estimated)
  return metric.results()


def _largest_difference(ours: dict, theirs: dict) -> float:
  """Largest |ours - sed_eval| over every figure of results() (NaN against NaN counts as 0)."""
  def flat(groups):  # sed_eval nests figures one level deeper than soundjax.
    return {key: value for group in groups.values() for key, value in group.items()}

  pairs = [(ours["overall"], flat(theirs["overall"])),
           (ours["class_wise_average"], flat(theirs["class_wise_average"]))]
  pairs += [(ours["class_wise"][label], flat(theirs["class_wise"][label])) for label in LABELS]
  largest = 0.0
  for mine, reference in pairs:
    for key, value in reference.items():
      if not (np.isnan(value) and np.isnan(mine[key])):
        largest = max(largest, abs(mine[key] - value))  # NaN against a number gives NaN.
  return largest


def _figures(ours: dict, difference: float) -> str:
  overall = ours["overall"]
  return (f"F {overall['f_measure']:.6f}, ER {overall['error_rate']:.6f}; largest |soundjax - "
          f"sed_eval| over all figures {difference:.1e}")


def _psds_eval_class():
  """psds_eval's PSDSEval with the pandas and numpy fixes, or None where it is not importable."""
  try:
    return psds_eval_compat.load()
  except ImportError:
    return None


def _psds_eval_score(psds_eval, reference: dict, operating_points: list,
                     scenario: sed.Scenario) -> float:
  psds_class, pd = psds_eval

  def table(events):
    rows = [(name, on, off, label) for name, lists in events.items() for on, off, label in lists]
    return pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"])

  metadata = pd.DataFrame([(name, SECONDS) for name in reference],
                          columns=["filename", "duration"])
  with warnings.catch_warnings():  # Its pandas idioms warn.
    warnings.simplefilter("ignore")
    evaluation = psds_class(scenario.dtc_threshold, scenario.gtc_threshold,
                            scenario.cttc_threshold, ground_truth=table(reference),
                            metadata=metadata, class_names=sorted(LABELS), duration_unit="hour")
    for events in operating_points:
      evaluation.add_operating_point(table(events))
    return evaluation.psds(scenario.alpha_ct, scenario.alpha_st, scenario.max_efpr).value


@functools.lru_cache(maxsize=None)
def _scoring_data(clips: int):
  """The test split, sed_eval's containers of it and the frame probabilities of its estimates."""
  import dcase_util  # pylint: disable=g-import-not-at-top

  reference, estimated = make_test_split(clips)
  benchlib.progress(f"  {clips} clips: {sum(map(len, reference.values()))} reference events, "
                    f"{sum(map(len, estimated.values()))} estimated")

  def container(events, name):
    return dcase_util.containers.MetaDataContainer([
        {"filename": name, "event_onset": on, "event_offset": off, "event_label": label}
        for on, off, label in events])

  containers = [(container(reference[name], name), container(estimated[name], name))
                for name in reference]
  return reference, estimated, containers, frame_probabilities(estimated)


def sed_eval_rows(kind: str, size: str) -> list:
  """`metrics.sed.<kind>_based` against sed_eval's, on the whole split."""
  import sed_eval  # pylint: disable=g-import-not-at-top

  reference, estimated, containers, _ = _scoring_data(CLIPS[size])
  settings = EVENT_SETTINGS if kind == "event" else SEGMENT_SETTINGS
  scorer = sed.event_based if kind == "event" else sed.segment_based
  ours = lambda: scorer(reference, estimated, labels=LABELS, **settings)
  rows = benchlib.compare(
      [benchlib.Workload(f"sed/{kind}-based metrics.sed.{kind}_based", ours,
                         examples=len(reference))],
      benchlib.Workload(f"sed_eval {sed_eval.__version__}",
                        lambda: _sed_eval_metric(kind, containers), examples=len(reference)),
      repeats=benchlib.REPEATS[size])
  mine = ours()
  difference = _largest_difference(mine, _sed_eval_metric(kind, containers))
  rows[0]["note"] = (", ".join(f"{k}={v}" for k, v in settings.items()) + "; "
                     + _figures(mine, difference))
  return rows


def _psds(reference: dict, probabilities: dict, scenario: sed.Scenario):
  return sed.psds_from_probabilities(
      reference, dict.fromkeys(reference, SECONDS), probabilities, hop_seconds=HOP,
      thresholds=THRESHOLDS, labels=LABELS, scenario=scenario)


SCENARIOS = {"PSDS1": sed.PSDS1, "PSDS2": sed.PSDS2}


def psds_rows(size: str) -> list:
  """PSDS1 and PSDS2 from probabilities on the whole split (no reference tool at this size)."""
  reference, _, _, probabilities = _scoring_data(CLIPS[size])
  per_file = dict(zip(reference, probabilities))
  benchlib.progress(f"  probabilities {list(probabilities.shape)}, {len(THRESHOLDS)} thresholds")
  workloads = [benchlib.Workload(f"sed/psds psds_from_probabilities {name}",
                                 functools.partial(_psds, reference, per_file, scenario),
                                 examples=len(reference))
               for name, scenario in SCENARIOS.items()]
  rows = benchlib.compare(workloads, repeats=benchlib.REPEATS[size],
                          no_reference="none (psds_eval: sed/psds-eval)")
  for row, (name, scenario) in zip(rows, SCENARIOS.items()):
    row["note"] = f"{name} = {_psds(reference, per_file, scenario).value:.6f}"
  return rows


def psds_eval_rows(size: str) -> list:
  """PSDS1 and PSDS2 against psds_eval on the first clips (psds_eval is slow on many)."""
  psds_eval = _psds_eval_class()
  if psds_eval is None:
    benchlib.progress("  psds_eval (and pandas) not importable: no psds_eval figures")
    return []
  reference, _, _, probabilities = _scoring_data(CLIPS[size])
  clips = PSDS_EVAL_CLIPS[size]
  subset = dict(list(zip(reference, probabilities))[:clips])
  subset_reference = {name: reference[name] for name in subset}
  # psds_eval scores decoded events; decoding is not in its time (it is in soundjax's).
  operating_points = [{name: sed.frames_to_events(p, hop_seconds=HOP, labels=LABELS, threshold=t)
                       for name, p in subset.items()} for t in THRESHOLDS]
  rows = []
  for name, scenario in SCENARIOS.items():
    values = {}  # the last value of each, for the note (psds_eval takes seconds per call)

    def theirs(scenario=scenario, values=values):
      values["theirs"] = _psds_eval_score(psds_eval, subset_reference, operating_points, scenario)

    def ours(scenario=scenario, values=values):
      values["ours"] = _psds(subset_reference, subset, scenario).value

    rows += benchlib.compare(
        [benchlib.Workload(f"sed/psds-eval psds_from_probabilities {name}", ours, examples=clips)],
        benchlib.Workload(f"psds_eval {name} on decoded events", theirs, examples=clips),
        repeats=benchlib.REPEATS[size])
    rows[-1]["note"] = (f"{clips} clips: {name} = {values['ours']:.6f}; |soundjax - psds_eval| = "
                        f"{abs(values['ours'] - values['theirs']):.1e}")
  return rows


TRAIN_BATCH = {"tiny": 1, "default": 8, "full": 32}
ATTACK_BATCH = {"tiny": 1, "default": 2, "full": 8}
SAMPLE_RATE = 16000
ATTENTION = {"widths": (50,)}


def _task(attention):
  """The published CRNN (64 channels, GRU 64) behind the published front end at 16 kHz."""
  front = sed_attention.frontend(SAMPLE_RATE, SECONDS)
  model = models.get_model("crnn_sed", num_classes=len(LABELS), attention=attention)
  return training.Task(model, frontend.log_mel(**front), "multilabel_sigmoid_cross_entropy")


def _clips(count: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  x = (0.1 * rng.standard_normal((count, int(SECONDS * SAMPLE_RATE)))).astype(np.float32)
  y = (rng.random((count, FRAMES, len(LABELS))) < 0.1).astype(np.float32)
  return x, y


def train_step_rows(size: str) -> list:
  """The attention CRNN's train step against the baseline CRNN's."""
  batch = TRAIN_BATCH[size]
  x, y = _clips(batch)
  benchlib.progress(f"  batch {batch}, {SECONDS:.0f} s clips at {SAMPLE_RATE} Hz, {FRAMES} "
                    f"frames x 40 mels")

  def step(name, attention):
    task = _task(attention)
    state = training.create_state(task, optax.adam(1e-3), x, jax.random.key(0))
    return benchlib.Workload(name, training.make_train_step(task),
                             (state, x, y, jax.random.key(1)), batch, threads_state=True)

  return benchlib.compare([step("sed/train-step CRNN + attention (width 50)", ATTENTION)],
                          step("baseline CRNN train step", None),
                          repeats=benchlib.REPEATS[size])


def attack_rows(size: str) -> list:
  """The SED experiment's PGD under an SNR floor of 20 dB on the attention CRNN's waveform."""
  batch = ATTACK_BATCH[size]
  task = _task(ATTENTION)
  x, y = _clips(batch)
  variables = jax.jit(lambda key: task.model.init(key, task.features(x[:1])))(jax.random.key(0))
  config = sed_attention.get_config()  # the experiment's PGD: steps, step factor, bounds
  pgd = evaluate.make_attack(task, config, jax.random.key(1))
  return benchlib.compare(
      [benchlib.Workload(f"sed/attack PGD-{config.attack.num_steps} at SNR >= 20 dB b{batch}", pgd,
                         (variables, jnp.float32(20.0), x, y, np.arange(batch)), batch)],
      repeats=benchlib.REPEATS[size])


def groups(size: str, args) -> dict:
  del args
  return {"train-step": lambda: train_step_rows(size), "attack": lambda: attack_rows(size),
          "event-based": lambda: sed_eval_rows("event", size),
          "segment-based": lambda: sed_eval_rows("segment", size),
          "psds": lambda: psds_rows(size), "psds-eval": lambda: psds_eval_rows(size)}


if __name__ == "__main__":
  benchlib.run_suite("sed", groups, sys.argv, __doc__.splitlines()[0])
