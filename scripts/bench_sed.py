"""Sound event detection benchmarks: the detectors' training step and PGD, and scoring a
2,000-clip test split against sed_eval.

Usage: python scripts/bench_sed.py  (or python scripts/bench.py sed)

`train_step()` times the jitted train step (`soundjax.training.make_train_step`, Adam) of the
published CRNN without and with memory-controlled attention (width 50) at batch 32 on 10 s clips
at 16 kHz through the published front end (500 frames of 40 min-max scaled mels), and `attack()`
times 10-step PGD under an SNR floor on the waveform of the attention model, as the SED
experiment runs it (`experiments.sed.evaluate.make_attack`). Both print clips/s (medians).

`scoring()` builds an URBAN-SED-like test split (2,000 clips of 10 s, 10 classes, 1-9 reference
events of 0.5-4 s per clip; the estimates are the references jittered, some dropped, some
relabelled, plus insertions; all from one numpy seed) and times, interleaved and repeated
(medians):
- `metrics.sed.event_based` against sed_eval's `EventBasedMetrics` (0.25 s onset collar, offsets
  not evaluated: the setting of the SED papers);
- `metrics.sed.segment_based` against `SegmentBasedMetrics` (1 s segments);
- `metrics.sed.psds_from_probabilities`, PSDS1 and PSDS2, on [2,000 clips x 500 frames x 10
  classes] probabilities decoded at 50 thresholds; against psds_eval on a subset of the clips when
  psds_eval (and pandas) can be imported.
sed_eval is fed as its documentation does, one `evaluate(reference, estimated)` per file, then
`results()`; its `MetaDataContainer`s are built before the clock starts (as if loaded from files),
while soundjax's time includes checking and converting the Python event lists. Every figure of the
two results (overall, class-wise, class-wise averages) is compared and the largest difference
printed; the PSDS values are compared the same way.
"""

import inspect
import statistics
import time
import warnings
from typing import Callable, Dict

import benchlib
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from scipy import ndimage

from configs import sed_attention
from soundjax import frontend, models, training
from soundjax.experiments.sed import evaluate
from soundjax.metrics import sed

CLIPS = 2000
SECONDS = 10.0
LABELS = ("air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
          "engine_idling", "gun_shot", "jackhammer", "siren", "street_music")  # URBAN-SED's
HOP = 0.02  # 500 frames per clip, as the CRNN baselines' 50 frames/s
FRAMES = int(round(SECONDS / HOP))
THRESHOLDS = np.arange(1 / 100, 1, 1 / 50)  # DCASE task 4's 50: 0.01, 0.03, ..., 0.99
REPEATS = 5
PSDS_EVAL_CLIPS = 100  # psds_eval's pandas joins take seconds per operating point on all clips
EVENT_SETTINGS = dict(t_collar=0.25, evaluate_onset=True, evaluate_offset=False)
SEGMENT_SETTINGS = dict(time_resolution=1.0)
# psds_eval 0.5.3 predates pandas 3 and numpy 2.4; the equivalents tests/metrics/test_psds.py uses.
_PSDS_EVAL_FIXES = {"fillna(method='ffill')": "ffill()",
                    "int(np.argwhere(_x == max_x))": "int(np.argwhere(_x == max_x)[0, 0])"}


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


def make_test_split(seed: int = 0):
  """`(reference, estimated)`: `{filename: [(onset, offset, label), ...]}` for every clip."""
  rng = np.random.default_rng(seed)
  reference, estimated = {}, {}
  for clip in range(CLIPS):
    name = f"soundscape_test_{clip:04d}.wav"
    reference[name] = _reference_events(rng)
    estimated[name] = _estimated_events(rng, reference[name])
  return reference, estimated


def frame_probabilities(estimated: dict, seed: int = 1) -> np.ndarray:
  """[clips, frames, classes] float32 scores a model might give: each estimated event at a
  confidence of 0.55-1 with 0.1 s ramps, plus noise smooth over 0.2-0.5 s."""
  rng = np.random.default_rng(seed)
  index = {label: c for c, label in enumerate(LABELS)}
  target = np.zeros((CLIPS, FRAMES, len(LABELS)), np.float32)
  for clip, events in enumerate(estimated.values()):
    for onset, offset, label in events:
      start, stop = int(onset / HOP), max(int(onset / HOP) + 1, int(offset / HOP))
      target[clip, start:stop, index[label]] = rng.uniform(0.55, 1.0)
  noise = np.repeat(rng.random((CLIPS, FRAMES // 10, len(LABELS)), np.float32), 10, axis=1)
  scores = (ndimage.uniform_filter1d(target, 5, axis=1, mode="nearest")
            + 0.35 * ndimage.uniform_filter1d(noise, 15, axis=1, mode="nearest"))
  return np.clip(scores, 0.0, 1.0).astype(np.float32)


def interleaved_medians(calls: Dict[str, Callable], repeats: int = REPEATS) -> Dict[str, float]:
  """Median wall time of each call, the calls taking turns so that load hits all alike."""
  seconds = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      seconds[name].append(time.perf_counter() - start)
  return {name: statistics.median(values) for name, values in seconds.items()}


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


def _print_figures(kind: str, ours: dict, difference: float) -> None:
  overall = ours["overall"]
  print(f"  {kind}-based: F {overall['f_measure']:.6f}, ER {overall['error_rate']:.6f}; "
        f"largest |soundjax - sed_eval| over all figures {difference:.1e}")
  print("  class-wise F: " + ", ".join(f"{label} {ours['class_wise'][label]['f_measure']:.4f}"
                                        for label in LABELS), flush=True)


def _psds_eval_class():
  """psds_eval's PSDSEval with the pandas and numpy fixes, or None where it is not importable."""
  try:
    import psds_eval.psds as module  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  source = inspect.getsource(module)
  for old, new in _PSDS_EVAL_FIXES.items():
    source = source.replace(old, new)
  namespace = {"__name__": "psds_eval_compatible"}
  exec(compile(source, module.__file__, "exec"), namespace)  # noqa: S102 (the reference's code)
  return namespace["PSDSEval"], namespace["pd"]


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


def scoring() -> None:
  """Event-based, segment-based and PSDS scoring of the test split, against sed_eval."""
  import dcase_util  # pylint: disable=g-import-not-at-top
  import sed_eval  # pylint: disable=g-import-not-at-top

  print(f"sed_eval {sed_eval.__version__}; {CLIPS} clips of {SECONDS:.0f} s, {len(LABELS)} "
        f"classes; medians of {REPEATS} interleaved runs", flush=True)
  reference, estimated = make_test_split()
  print(f"  {sum(map(len, reference.values()))} reference events, "
        f"{sum(map(len, estimated.values()))} estimated", flush=True)

  def container(events, name):
    return dcase_util.containers.MetaDataContainer([
        {"filename": name, "event_onset": on, "event_offset": off, "event_label": label}
        for on, off, label in events])

  containers = [(container(reference[name], name), container(estimated[name], name))
                for name in reference]
  ours = {"event": lambda: sed.event_based(reference, estimated, labels=LABELS, **EVENT_SETTINGS),
          "segment": lambda: sed.segment_based(reference, estimated, labels=LABELS,
                                               **SEGMENT_SETTINGS)}
  calls = {}
  for kind in ("event", "segment"):
    calls[f"sed_eval {kind}"] = lambda kind=kind: _sed_eval_metric(kind, containers)
    calls[f"soundjax {kind}"] = ours[kind]
  seconds = interleaved_medians(calls)
  for kind in ("event", "segment"):
    settings = EVENT_SETTINGS if kind == "event" else SEGMENT_SETTINGS
    print(f"{kind}-based, " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
    reference_seconds = seconds[f"sed_eval {kind}"]
    benchlib.report(f"sed_eval {kind}-based (reference)", CLIPS, reference_seconds)
    benchlib.report(f"metrics.sed.{kind}_based", CLIPS, seconds[f"soundjax {kind}"],
                    reference_seconds)
    mine = ours[kind]()
    _print_figures(kind, mine, _largest_difference(mine, _sed_eval_metric(kind, containers)))

  probabilities = frame_probabilities(estimated)
  per_file = dict(zip(reference, probabilities))
  durations = dict.fromkeys(reference, SECONDS)
  print(f"PSDS: probabilities {list(probabilities.shape)}, {len(THRESHOLDS)} thresholds",
        flush=True)

  def psds(scenario, files=per_file):
    return sed.psds_from_probabilities(
        {name: reference[name] for name in files}, {name: durations[name] for name in files},
        files, hop_seconds=HOP, thresholds=THRESHOLDS, labels=LABELS, scenario=scenario)

  scenarios = {"PSDS1": sed.PSDS1, "PSDS2": sed.PSDS2}
  seconds = interleaved_medians({name: lambda s=s: psds(s) for name, s in scenarios.items()}, 3)
  for name, scenario in scenarios.items():
    benchlib.report(f"metrics.sed.psds_from_probabilities {name}", CLIPS, seconds[name])
    print(f"  {name} = {psds(scenario).value:.6f}", flush=True)

  psds_eval = _psds_eval_class()
  if psds_eval is None:
    print("psds_eval (and pandas) not importable: no psds_eval figures.")
    return
  subset = dict(list(per_file.items())[:PSDS_EVAL_CLIPS])
  # psds_eval scores decoded events; decoding is not in its time (it is in soundjax's).
  operating_points = [{name: sed.frames_to_events(p, hop_seconds=HOP, labels=LABELS, threshold=t)
                       for name, p in subset.items()} for t in THRESHOLDS]
  subset_reference = {name: reference[name] for name in subset}
  for name, scenario in scenarios.items():
    seconds = interleaved_medians({
        "psds_eval": lambda s=scenario: _psds_eval_score(psds_eval, subset_reference,
                                                         operating_points, s),
        "soundjax": lambda s=scenario: psds(s, subset)}, 3)
    benchlib.report(f"psds_eval {name}, {PSDS_EVAL_CLIPS} clips (reference)", PSDS_EVAL_CLIPS,
                    seconds["psds_eval"])
    benchlib.report(f"psds_from_probabilities {name}, {PSDS_EVAL_CLIPS} clips", PSDS_EVAL_CLIPS,
                    seconds["soundjax"], seconds["psds_eval"])
    mine = psds(scenario, subset).value
    theirs = _psds_eval_score(psds_eval, subset_reference, operating_points, scenario)
    print(f"  {name} = {mine:.6f}; |soundjax - psds_eval| = {abs(mine - theirs):.1e}",
          flush=True)


TRAIN_BATCH = 32
ATTACK_BATCH = 8
TIMED_CALLS = 3
SAMPLE_RATE = 16000


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


def _median_seconds(call: Callable, calls: int = TIMED_CALLS) -> float:
  call()  # compiles
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def train_step() -> None:
  x, y = _clips(TRAIN_BATCH)
  print(f"train step: batch {TRAIN_BATCH}, {SECONDS:.0f} s clips at {SAMPLE_RATE} Hz, "
        f"{FRAMES} frames x 40 mels, {jax.default_backend()}", flush=True)
  for name, attention in (("baseline CRNN", None), ("CRNN + attention (width 50)",
                                                     {"widths": (50,)})):
    task = _task(attention)
    state = training.create_state(task, optax.adam(1e-3), x, jax.random.key(0))
    step = training.make_train_step(task)
    holder = {"state": state}

    def call():
      holder["state"], scalars = step(holder["state"], x, y, jax.random.key(1))
      jax.block_until_ready(scalars)

    benchlib.report(f"{name} train step", TRAIN_BATCH, _median_seconds(call))


def attack() -> None:
  task = _task({"widths": (50,)})
  x, y = _clips(ATTACK_BATCH)
  variables = jax.jit(lambda key: task.model.init(key, task.features(x[:1])))(jax.random.key(0))
  config = ml_collections.ConfigDict({
      "attack": {"step_size": 0.002, "num_steps": 10}, "bounds": (-1.0, 1.0)})
  pgd = evaluate.make_attack(task, config, jax.random.key(1))
  index = np.arange(ATTACK_BATCH)
  seconds = _median_seconds(
      lambda: jax.block_until_ready(pgd(variables, jnp.float32(20.0), x, y, index)))
  benchlib.report(f"PGD-10 at SNR >= 20 dB, batch {ATTACK_BATCH}", ATTACK_BATCH, seconds)


def main() -> None:
  train_step()
  attack()
  scoring()


if __name__ == "__main__":
  main()
