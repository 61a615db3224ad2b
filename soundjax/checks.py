"""Argument checks shared by every factory and config check, and `ConfigError`.

Each check raises `ValueError` naming the argument (`"eps must be finite and >= 0, got -1"`) and
returns the value, so a factory can validate and bind in one line. Config checks name the field
instead (`name="config.train.learning_rate"`) and raise `ConfigError`, through `require` or
`config_field`. This module imports nothing of soundjax, so every layer can use it.

Labels are checked where a loss is traced (`labels`: integer dtype and shape) and, since values
are unknown then, by value only in the checked mode: `checked(fn)` runs any loss, attack or
attribution under `jax.experimental.checkify` and raises `CheckError` on an out-of-range label
(`label_range`), a non-finite input or a NaN produced inside.
"""

import contextlib
import difflib
import functools
import inspect
import math
import numbers
from typing import Any, Callable, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify


class ConfigError(ValueError):
  """A config value that cannot work; the message names the field."""


def require(condition: bool, field: str, message: str) -> None:
  """Raises `ConfigError("config.<field> <message>")` unless `condition` holds."""
  if not condition:
    raise ConfigError(f"config.{field} {message}")


def require_choice(value: Any, choices: Sequence[Any], field: str, what: str) -> None:
  """Raises `ConfigError` naming `field`, the known `what` and the closest match, unless
  `value in choices`."""
  require(value in choices, field,
          f"is {value!r}; known {what}: {sorted(choices)}{closest(value, choices)}.")


@contextlib.contextmanager
def config_field(field: str) -> Iterator[None]:
  """Turns a `ValueError` or `TypeError` raised inside into a `ConfigError` naming `field`.

  Example:
    >>> with config_field("frontend"):
    ...   frontend.log_mel(**config.frontend)  # "config.frontend: n_mels must not exceed ..."
  """
  try:
    yield
  except ConfigError:
    raise
  except (TypeError, ValueError) as error:
    # A check given the field's full name ("config.x.y must ...") already says where.
    message = str(error) if str(error).startswith("config.") else f"config.{field}: {error}"
    raise ConfigError(message) from error


def is_integer(value: Any, minimum: Optional[int] = None) -> bool:
  """Whether `value` is an integer (not a bool) of at least `minimum`."""
  return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
          and (minimum is None or value >= minimum))


def is_number(value: Any) -> bool:
  """Whether `value` is a real number (not a bool)."""
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(name: str, value: Any, minimum: int = 1) -> int:
  """An integer >= `minimum` (a count, a size, a number of steps)."""
  if not is_integer(value, minimum):
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def optional_integer(name: str, value: Any, minimum: int = 1) -> Optional[int]:
  """None, or an integer >= `minimum` (e.g. an optional batch size)."""
  return None if value is None else integer(name, value, minimum)


def finite(name: str, value: Any) -> float:
  """A finite real number."""
  if not is_number(value) or not math.isfinite(value):
    raise ValueError(f"{name} must be finite, got {value!r}")
  return float(value)


def _traced(value: Any) -> bool:
  """A scalar jax array: a budget traced by a compiled sweep (e.g. the SNR of
  `jax.jit(lambda snr_db: ...)`), whose value is unknown until it runs."""
  return isinstance(value, jax.Array) and value.ndim == 0


def finite_or_traced(name: str, value: Any) -> Any:
  """A finite real number, or a traced scalar budget (see `_traced`) passed as is."""
  return value if _traced(value) else finite(name, value)


def nonnegative_or_traced(name: str, value: Any) -> Any:
  """A finite number >= 0, or a traced scalar budget (see `_traced`) passed as is."""
  return value if _traced(value) else nonnegative(name, value)


def nonnegative(name: str, value: Any) -> float:
  """A finite number >= 0."""
  if not is_number(value) or not math.isfinite(value) or value < 0:
    raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
  return float(value)


def function(name: str, value: Any, where: str = "") -> Callable:
  """A callable; a TypeError names the argument (after `where`, e.g. the factory) otherwise."""
  if not callable(value):
    raise TypeError(f"{where + ': ' if where else ''}{name} must be a function, got {value!r}")
  return value


def positive(name: str, value: Any) -> float:
  """A finite number > 0."""
  if not is_number(value) or not math.isfinite(value) or value <= 0:
    raise ValueError(f"{name} must be finite and > 0, got {value!r}")
  return float(value)


def in_interval(name: str, value: Any, low: float, high: float, *,
                closed_high: bool = True) -> float:
  """A number in `[low, high]` (or `[low, high)` with `closed_high=False`)."""
  inside = is_number(value) and low <= value and (value <= high if closed_high else value < high)
  if not inside:
    raise ValueError(f"{name} must be in [{low}, {high}{']' if closed_high else ')'}, "
                     f"got {value!r}")
  return float(value)


def fraction(name: str, value: Any) -> float:
  """A number in [0, 1]."""
  return in_interval(name, value, 0.0, 1.0)


def closest(value: Any, choices: Sequence[str]) -> str:
  """`" (did you mean 'x'?)"` for the choice closest to a misspelled `value`, else `""`."""
  matches = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
  return f" (did you mean {matches[0]!r}?)" if matches else ""


def one_of(name: str, value: Any, choices: Sequence[Any]) -> Any:
  """One of `choices` (a registry's keys, None among them if it is a choice); the error lists
  them and the closest named one."""
  if value not in choices:
    listed = sorted(choices, key=lambda c: (c is not None, str(c)))  # None first, then by name
    raise ValueError(f"{name} must be one of {listed}, got {value!r}"
                     f"{closest(value, [c for c in choices if c is not None])}")
  return value


def names(name: str, values: Sequence[Any], choices: Sequence[Any]) -> tuple:
  """A non-empty sequence of entries of `choices`."""
  if isinstance(values, str) or len(values) == 0:
    raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
  return tuple(one_of(f"{name} entry", value, choices) for value in values)


def positive_integers(name: str, values: Any) -> tuple:
  """A non-empty sequence of integers >= 1 (channels, widths)."""
  if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values or \
      not all(is_integer(v, 1) for v in values):
    raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
  return tuple(int(v) for v in values)


def increasing(name: str, values: Any, *, low: Optional[float] = None,
               high: Optional[float] = None, minimum_length: int = 1) -> tuple:
  """A sequence of at least `minimum_length` strictly increasing numbers in `[low, high]`.

  A list, tuple or 1-D numpy or jax array (fractions, levels, thresholds); the error names `name`.
  """
  if hasattr(values, "__array__") and not isinstance(values, np.ndarray):
    values = np.asarray(values)  # A jax array: its entries as host numbers.
  if isinstance(values, np.ndarray):
    values = (values.item(),) if values.ndim == 0 else tuple(values.tolist())
  values = tuple(values) if isinstance(values, Sequence) else (values,)
  bad = (len(values) < minimum_length or not all(is_number(v) and math.isfinite(v) for v in values)
         or np.any(np.diff(np.asarray(values, float)) <= 0)
         or (low is not None and min(values) < low) or (high is not None and max(values) > high))
  if bad:
    where = f" in [{low}, {high}]" if low is not None or high is not None else ""
    raise ValueError(f"{name} must be at least {minimum_length} strictly increasing finite "
                     f"numbers{where}, got {values!r}")
  return tuple(float(v) for v in values)


def bounds(value: Optional[Sequence[float]]) -> Optional[tuple]:
  """None, or a box `(lo, hi)` with finite `lo < hi`."""
  if value is None:
    return None
  if len(value) != 2 or not all(is_number(v) for v in value) or not value[0] < value[1]:
    raise ValueError(f"bounds must be (lo, hi) with lo < hi, got {value!r}")
  return (float(value[0]), float(value[1]))


# --- Labels and the checked mode --------------------------------------------------------------
#
# Shapes and dtypes are static, so labels are checked when a loss is traced. Values are not: an
# out-of-range label makes the loss NaN (never another class), and `checked` turns that, a
# non-finite input or a NaN produced anywhere into an exception.

# The error categories `checked` enables: `check`/`debug_check` failures, NaN produced by a
# floating-point op, integer division by zero. Index checks stay off: jnp's clamped and filled
# gathers are intended.
CHECKS = checkify.user_checks | checkify.nan_checks | checkify.div_checks


class CheckError(ValueError):
  """A value check of `checked` failed: a label out of range, a non-finite input, a NaN made."""


def labels(y: Any, *, shape: tuple, where: str, name: str = "y", binary: bool = False,
           per_example: bool = False) -> jax.Array:
  """`y` as an integer array of `shape`, checked when traced (dtype and shape are static).

  Args:
    y: class indices (bools too with `binary=True`).
    shape: the expected shape, e.g. `()` per example or `logits.shape[:-1]` for a batch.
    where: the function that takes `y`, named in the message (`"soundjax.losses.<name>"`).
    name: the argument's name.
    binary: accept bools, for a single-logit binary loss.
    per_example: say "one label per example" and how to batch, when `shape == ()`.

  Returns:
    `y` as a jax integer array (bools as int32).

  Raises:
    TypeError: `y` does not hold integers (floats, one-hot vectors, probabilities).
    ValueError: `y` has another shape.
  """
  y = jnp.asarray(y)
  if binary and y.dtype == jnp.bool_:
    y = y.astype(jnp.int32)
  if not jnp.issubdtype(y.dtype, jnp.integer):
    hint = (" (pass class indices, e.g. jnp.argmax(one_hot, axis=-1), not one-hot vectors or "
            "probabilities)" if jnp.issubdtype(y.dtype, jnp.inexact) else "")
    raise TypeError(f"{where}: {name} must hold integer class indices, got dtype {y.dtype} "
                    f"and shape {y.shape}{hint}")
  if y.shape != tuple(shape):
    if per_example:
      raise ValueError(f"{where}: {name} must be one integer class index per example (shape "
                       f"()), got shape {y.shape}; batch the loss with jax.vmap(loss_fn, "
                       "in_axes=(None, 0, 0))")
    hint = (" (drop the trailing axis: y[..., 0])" if y.shape == tuple(shape) + (1,) else "")
    raise ValueError(f"{where}: {name} must be integer class indices of shape {tuple(shape)}, "
                     f"one per row of the logits, got shape {y.shape}{hint}")
  return y


def label_range(y: jax.Array, num_classes: int, *, dtype: Any, where: str,
                name: str = "y") -> jax.Array:
  """A factor for a loss: 1 where `0 <= y < num_classes`, NaN elsewhere (broadcast like `y`).

  A loss multiplied by it is NaN for an invalid label, and so is its gradient, instead of the loss
  of a wrapped or dropped class. Under `checked` an invalid label raises `CheckError` naming `y`;
  unchecked, the check is a no-op that XLA removes, and the factor costs a compare and a multiply.
  """
  valid = (y >= 0) & (y < num_classes)
  first_bad = jnp.ravel(y)[jnp.argmin(jnp.ravel(valid))]
  checkify.debug_check(jnp.all(valid), f"{where}: label {name}={{}} is outside [0, "
                       f"{num_classes}), the {num_classes} classes (unchecked, this loss is NaN)",
                       first_bad)
  return jnp.where(valid, 1.0, jnp.nan).astype(dtype)


def _argument_names(fn: Callable) -> list:
  try:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
  except (TypeError, ValueError):
    return []


def _leaf_name(path: tuple, positional: list) -> str:
  """`x`, `params['params']['Dense_0']['kernel']` or `argument 3` for a leaf of (args, kwargs)."""
  group, key, rest = path[0], path[1], path[2:]
  if group.idx == 0:
    index = key.idx
    head = positional[index] if index < len(positional) else f"argument {index}"
  else:
    head = str(key.key)
  return head + jax.tree_util.keystr(rest)


def checked(fn: Callable, *, errors: frozenset = CHECKS) -> Callable:
  """Returns `fn` that raises `CheckError` where it would return values from bad inputs.

  Wraps any loss, attack, attribution or the user's `jax.jit(jax.vmap(...))` of them with
  `jax.experimental.checkify` (compiled once per input shape). A call raises when:
  - an input array (in any argument, e.g. `x` or `params`) holds NaN or infinity;
  - a label is out of range in a soundjax loss (`y=12` for 12 classes, `y=-1`);
  - an operation produces NaN (a log of a negative number, 0 / 0, inf - inf).
  The unchecked function stays as fast as before (soundjax's label checks compile to nothing
  there); this one adds a reduction per floating-point op, so it compiles several times slower
  (seconds for a small model): use it to debug, in tests, or on a first batch. For labels and
  inputs only, pass `errors=checkify.user_checks`.

  Args:
    fn: the function to check; its outputs are returned unchanged when every check passes.
    errors: checkify error categories (default `CHECKS`: user checks, NaN and division checks).

  Returns:
    `checked_fn(*args, **kwargs)` with `fn`'s signature.

  Raises:
    CheckError: (when called) naming the input, the label or the NaN-producing operation.

  Example:
    >>> batched = checks.checked(jax.jit(jax.vmap(loss_fn, in_axes=(None, 0, 0))))
    >>> batched(variables, waveforms, jnp.array([0, 1, 2, 12]))
    CheckError: soundjax.checks.checked(loss_fn): soundjax.losses.softmax_cross_entropy: label
    y=12 is out of range: a model with 12 outputs takes labels in [0, 12) ...
  """
  if not callable(fn):
    raise TypeError(f"checked needs a function, got {fn!r}")
  title = getattr(fn, "__name__", type(fn).__name__)
  positional = _argument_names(fn)

  def with_input_checks(*args, **kwargs):
    for path, leaf in jax.tree_util.tree_flatten_with_path((args, kwargs))[0]:
      dtype = getattr(leaf, "dtype", None)
      if dtype is not None and jnp.issubdtype(dtype, jnp.inexact):
        bad = jnp.sum(~jnp.isfinite(leaf))
        checkify.check(bad == 0, f"input {_leaf_name(path, positional)} holds {{}} NaN or "
                       "infinite value(s); every output it reaches would be NaN", bad)
    return fn(*args, **kwargs)

  compiled = jax.jit(checkify.checkify(with_input_checks, errors=errors))

  @functools.wraps(fn)
  def checked_fn(*args, **kwargs):
    error, out = compiled(*args, **kwargs)
    try:
      error.throw()
    except checkify.JaxRuntimeError as failure:
      raise CheckError(f"soundjax.checks.checked({title}): {failure}") from None
    return out

  return checked_fn
