"""The SED experiment's config: its checks, the detectors it trains (baseline, one per width, one
multi-head) and each detector's training config.
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

import ml_collections

from soundjax import attacks, models
from soundjax.checks import config_field, require
from soundjax.training import checks as training_checks

BASELINE = "baseline"
MULTI_HEAD = "multi_head"


@dataclasses.dataclass(frozen=True)
class Detector:
  """One detector of the study: its name and attention settings (None: the baseline CRNN).

  Attributes:
    name: "baseline", "width_<w>" ("width_full" for every frame) or "multi_head".
    attention: `models.MultiHeadSelfAttention` keyword arguments, or None.
    widths: the widths it attends over (empty for the baseline), for tables and plots.
  """
  name: str
  attention: Optional[Dict[str, Any]]
  widths: Tuple[Optional[int], ...]


def width_name(width: Optional[int]) -> str:
  """"width_<w>", or "width_full" for attention over every frame."""
  return "width_full" if width is None else f"width_{width}"


def detectors(config: ml_collections.ConfigDict) -> List[Detector]:
  """The baseline, one single-head detector per `config.widths` and, when
  `config.multi_head_widths` is not empty, the multi-head one."""
  shared = config.attention.to_dict()
  found = [Detector(BASELINE, None, ())]
  found += [Detector(width_name(w), {**shared, "widths": (w,)}, (w,)) for w in config.widths]
  if config.multi_head_widths:
    widths = tuple(config.multi_head_widths)
    found.append(Detector(MULTI_HEAD, {**shared, "widths": widths}, widths))
  return found


def detector_config(config: ml_collections.ConfigDict, detector: Detector,
                    seed: int) -> ml_collections.ConfigDict:
  """The `soundjax.training.train` config of one detector and seed."""
  kwargs = {**config.model.get("kwargs", {}).to_dict(), "attention": detector.attention}
  return ml_collections.ConfigDict({
      "seed": seed,
      "data": config.data.to_dict(),
      "frontend": config.frontend.to_dict(),
      "model": {"name": config.model.name, "kwargs": kwargs},
      "loss": config.loss,
      "train": config.train.to_dict(),
  })


def frame_rate(config: ml_collections.ConfigDict) -> float:
  """Frames per second of the front end (and of the frame targets)."""
  return config.frontend.sample_rate / config.frontend.hop_length


def check_config(config: ml_collections.ConfigDict) -> None:
  """Fails at start, naming the field, on anything `run` would trip over later."""
  seeds = config.seeds
  require(len(seeds) > 0 and all(isinstance(s, int) and s >= 0 for s in seeds)
          and len(set(seeds)) == len(seeds), "seeds",
          f"must be distinct non-negative integers, at least one, got {tuple(seeds)!r}.")
  require(len(config.widths) > 0 or len(config.multi_head_widths) > 0, "widths",
          "and multi_head_widths are both empty: there is no attention model to compare.")
  for field in ("widths", "multi_head_widths"):
    widths = tuple(config[field])
    require(all(w is None or (isinstance(w, int) and w >= 1) for w in widths), field,
            f"must hold positive integers or None (every frame), got {widths!r}.")
    require(len(set(widths)) == len(widths), field, f"must be distinct, got {widths!r}.")
  training_checks.check_classifier(detector_config(config, detectors(config)[0], seeds[0]))
  require(models.frame_wise(config.model.name), "model.name",
          f"is {config.model.name!r}, which is not a frame-wise detector; use 'crnn_sed'.")
  for detector in detectors(config)[1:]:
    # Builds each model, which checks the attention settings.
    with config_field("attention"):
      models.get_model(config.model.name, num_classes=1,
                       **detector_config(config, detector, 0).model.kwargs)
  targets = config.data.frame_targets
  require(math.isclose(targets.frame_rate, frame_rate(config)), "data.frame_targets.frame_rate",
          f"is {targets.frame_rate}, but the front end makes {frame_rate(config)} frames/s.")
  require(targets.num_frames == config.frontend.get("num_frames"),
          "data.frame_targets.num_frames", f"is {targets.num_frames}, but the front end makes "
          f"{config.frontend.get('num_frames')} frames.")
  require(0.0 < config.selection_threshold < 1.0, "selection_threshold",
          f"must be in (0, 1), got {config.selection_threshold}.")
  grid = tuple(config.decode.threshold_grid)
  require(len(grid) > 0 and all(0.0 < t < 1.0 for t in grid)
          and all(a < b for a, b in zip(grid, grid[1:])), "decode.threshold_grid",
          f"must be increasing thresholds in (0, 1), got {grid!r}.")
  window = config.decode.median_window
  require(isinstance(window, int) and window >= 1 and window % 2 == 1, "decode.median_window",
          f"must be an odd number of frames >= 1, got {window!r}.")
  require(config.scoring.collar >= 0, "scoring.collar",
          f"must be >= 0 seconds, got {config.scoring.collar}.")
  require(config.scoring.segment_seconds > 0, "scoring.segment_seconds",
          f"must be positive, got {config.scoring.segment_seconds}.")
  require(isinstance(config.scoring.psds_thresholds, int) and config.scoring.psds_thresholds >= 2,
          "scoring.psds_thresholds",
          f"must be an integer >= 2, got {config.scoring.psds_thresholds!r}.")
  attack = config.attack
  for name in ("num_clips", "num_steps", "batch_size"):
    require(isinstance(attack[name], int) and attack[name] >= 1 or
            (name == "num_clips" and attack[name] == 0), f"attack.{name}",
            f"must be a positive integer (num_clips may be 0: no attack), got {attack[name]!r}.")
  with config_field("attack"):
    attacks.pgd(lambda *args: 0.0, eps=2.0, step_factor=attack.step_factor,
                num_steps=attack.num_steps, snr_db=0.0)
    for snr in attack.snr_db:
      attacks.project_snr(snr)
  lo, hi = config.bounds
  require(lo < hi, "bounds", f"must be (lo, hi) with lo < hi, got {tuple(config.bounds)!r}.")
