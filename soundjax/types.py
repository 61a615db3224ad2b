"""The contracts' type aliases, defined once.

Every transform works on ONE unbatched example; callers batch it with
`jax.jit(jax.vmap(f, in_axes=(None, 0, 0, 0)))` and `params` is whatever the model's `apply`
takes (for Linen, the variables dict with `params` and, where present, `batch_stats`).

- `FrontEnd`: `(waveform) -> features`, e.g. `frontend.log_mel(...)`.
- `LogitsFn`: `(params, x) -> logits` for one example (`losses.model_logits`).
- `LossFn`: `(params, x, y) -> scalar`; attacks ascend it, attributions differentiate it.
- `Attack`: `(params, x, y, key) -> x_adv`, `x_adv.shape == x.shape`.
- `Attribution`: `(params, x, y, key) -> a`, `a.shape == x.shape`.
- `Init`: `(x, key) -> delta`, an attack's starting perturbation.
- `Projection`: `(delta, x) -> delta`, a constraint (norm ball, SNR floor, box) on `x + delta`.
- `Replacement`: `(x, key) -> fill`, the values occluded inputs take (`key` may be None).
- `Bounds`: `(lo, hi)` valid input range, or None for none.
- `Event`: `(onset, offset, label)` in seconds; `EventLists`: a filename -> events mapping or a
  list of per-file event lists.
"""

from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import jax

Params = Any
FrontEnd = Callable[[jax.Array], jax.Array]
LogitsFn = Callable[[Params, jax.Array], jax.Array]
LossFn = Callable[[Params, jax.Array, jax.Array], jax.Array]
Attack = Callable[[Params, jax.Array, jax.Array, jax.Array], jax.Array]
Attribution = Callable[[Params, jax.Array, jax.Array, jax.Array], jax.Array]
Init = Callable[[jax.Array, jax.Array], jax.Array]
Projection = Callable[[jax.Array, jax.Array], jax.Array]
Replacement = Callable[[jax.Array, Optional[jax.Array]], jax.Array]
Bounds = Optional[Sequence[float]]
Event = Tuple[float, float, str]
EventLists = Union[Mapping[str, Sequence[Event]], Sequence[Sequence[Event]]]
