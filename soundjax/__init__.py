"""soundjax: attack, explain and benchmark sound models in JAX.

Subpackages: `frontend` (librosa-exact log-mel), `models` (Flax Linen), `losses` (per-example
logits/loss functions that transforms close over), `attacks`, `attribution`, `metrics`, `data`
(TFDS builders and grain pipelines), `training` (resumable training), `parallel` (batch sharding
and chunking), `report` and `experiments`; `types` holds the contracts' aliases and `checks` the
argument checks.
"""

from soundjax import attacks, attribution, checks, frontend, losses, metrics, models, types

__version__ = "0.1.0"
__all__ = ["attacks", "attribution", "checks", "frontend", "losses", "metrics", "models", "types"]
