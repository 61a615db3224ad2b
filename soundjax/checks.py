"""Argument checks shared by every factory and config check, and `ConfigError`.

Each check raises `ValueError` naming the argument (`"eps must be finite and >= 0, got -1"`) and
returns the value, so a factory can validate and bind in one line. Config checks name the field
instead (`name="config.train.learning_rate"`) and raise `ConfigError`, through `require` or
`config_field`. This module imports nothing of soundjax, so every layer can use it.
"""

import contextlib
import difflib
import math
import numbers
from typing import Any, Iterator, Optional, Sequence

import numpy as np


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


def nonnegative(name: str, value: Any) -> float:
  """A finite number >= 0."""
  if not is_number(value) or not math.isfinite(value) or value < 0:
    raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
  return float(value)


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
  """One of `choices` (a registry's keys); the error lists them and the closest match."""
  if value not in choices:
    raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}"
                     f"{closest(value, choices)}")
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
  """A sequence of at least `minimum_length` strictly increasing numbers in `[low, high]`."""
  values = tuple(values) if isinstance(values, (Sequence, np.ndarray)) else (values,)
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
