"""soundjax: attack, explain and benchmark sound models in JAX.

Subpackages: `frontend` (librosa-exact log-mel), `models` (Flax Linen), `losses` (per-example
logits/loss functions that transforms close over), `attacks`, `attribution`, `metrics`, `data`
(TFDS builders and grain pipelines), `train` (resumable training) and `experiments`.
"""

from soundjax import attacks, attribution, frontend, losses, metrics, models

__version__ = "0.1.0"
__all__ = ["attacks", "attribution", "frontend", "losses", "metrics", "models"]
