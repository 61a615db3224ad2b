"""Experiment configs from Python: `load_config("classification:quick", {"train.num_steps": 10})`.

The command line's `--config=configs/classification.py:quick --config.train.num_steps=10`, from
any working directory: the config module is `configs.<name>` of the installed project (the
`configs` package ships with soundjax), read with `importlib`, and the overrides are dotted field
paths. Every mistake (an unknown config, variant or field, a value of the wrong type) raises
`ConfigError` naming the valid choices and the closest match; bad VALUES are caught, as on the
command line, by the experiment's `run` (or `training.train`), which checks the whole config
before doing anything.
"""

import importlib
import pkgutil
from typing import Any, List, Mapping, Optional

import ml_collections

from soundjax.checks import ConfigError, closest

# Modules of `configs` that hold shared parts, not an experiment.
_NOT_CONFIGS = ("common",)


def _configs_package():
  try:
    return importlib.import_module("configs")
  except ModuleNotFoundError:
    raise ConfigError("soundjax.experiments.load_config: the configs package is not importable; "
                      "install the project (pip install -e .) so that configs/ ships with "
                      "soundjax") from None


def config_names() -> List[str]:
  """The experiment configs `load_config` knows: the modules of `configs/` but `common`."""
  package = _configs_package()
  return sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                if not info.name.startswith("_") and info.name not in _NOT_CONFIGS)


def _split(spec: str) -> tuple:
  """`"classification:quick"` (or `"configs/classification.py:quick"`) -> (name, variant)."""
  if not isinstance(spec, str) or not spec:
    raise ConfigError(f"soundjax.experiments.load_config: the config must be a name such as "
                      f"'classification' or 'classification:quick', got {spec!r}")
  path, _, variant = spec.partition(":")
  name = path.rsplit("/", 1)[-1]
  name = name[:-3] if name.endswith(".py") else name
  return name, variant


def _module(name: str):
  names = config_names()
  if name not in names:
    where = list(_configs_package().__path__)
    raise ConfigError(f"soundjax.experiments.load_config: unknown config {name!r}"
                      f"{closest(name, names)}; known configs (in {where}): {names}")
  return importlib.import_module(f"configs.{name}")


def _config(module, name: str, variant: str) -> ml_collections.ConfigDict:
  variants = getattr(module, "VARIANTS", None)
  if variants is not None and variant not in variants:
    raise ConfigError(f"soundjax.experiments.load_config: unknown variant {variant!r} of "
                      f"configs/{name}.py{closest(variant, variants)}; its variants: "
                      f"{list(variants)}")
  try:
    return module.get_config(variant)
  except ValueError as error:  # A config without VARIANTS refuses an unknown one itself.
    raise ConfigError(f"soundjax.experiments.load_config: configs/{name}.py:{variant}: "
                      f"{error}") from error


def _override(config: ml_collections.ConfigDict, path: str, value: Any, spec: str) -> None:
  """Sets the dotted field `path` of `config`; every level must exist already."""
  if not isinstance(path, str) or not path:
    raise ConfigError(f"soundjax.experiments.load_config: an override key must be a dotted "
                      f"field path such as 'train.num_steps', got {path!r}")
  node, parts = config, path.split(".")
  for depth, part in enumerate(parts):
    prefix = ".".join(["config"] + parts[:depth])
    if not isinstance(node, ml_collections.ConfigDict):
      raise ConfigError(f"soundjax.experiments.load_config: unknown field config.{path} of "
                        f"{spec}: {prefix} is {node!r}, not a group of fields")
    fields = sorted(node.keys())
    if part not in fields:
      raise ConfigError(f"soundjax.experiments.load_config: unknown field config.{path} of "
                        f"{spec}: {prefix} has no field {part!r}{closest(part, fields)}; its "
                        f"fields: {fields}")
    if depth < len(parts) - 1:
      node = node[part]
  try:
    node[parts[-1]] = value
  except (TypeError, ValueError) as error:  # ConfigDict keeps each field's type.
    raise ConfigError(f"soundjax.experiments.load_config: config.{path} of {spec} cannot be "
                      f"set to {value!r}: {error}") from error


def load_config(spec: str, overrides: Optional[Mapping[str, Any]] = None
                ) -> ml_collections.ConfigDict:
  """The config of `configs/<name>.py:<variant>` with `overrides`, from any working directory.

  The same config the command line builds from `--config=configs/<name>.py:<variant>` and
  `--config.<field>=<value>` flags, locked as there (a misspelled field set later fails too).
  Pass it to the experiment's `run`, or to `training.train` for a classification config; both
  check every value first and raise `ConfigError` naming the field.

  Args:
    spec: `"<name>"` or `"<name>:<variant>"`, e.g. `"classification:quick"`; the CLI's
      `"configs/classification.py:quick"` works too.
    overrides: `{dotted field: value}`, e.g. `{"train.num_steps": 10, "model.name": "crnn"}`.

  Returns:
    The locked `ml_collections.ConfigDict`.

  Raises:
    ConfigError: an unknown config name or variant, a field that does not exist (with the valid
      names and the closest match) or a value of the wrong type for its field.

  Example:
    >>> from soundjax import experiments
    >>> from soundjax.experiments import classification
    >>> config = experiments.load_config("classification:quick", {"train.num_steps": 10})
    >>> results = classification.run(config, "runs/notebook")
  """
  name, variant = _split(spec)
  config = _config(_module(name), name, variant)
  label = f"configs/{name}.py:{variant}" if variant else f"configs/{name}.py"
  for path, value in dict(overrides or {}).items():
    _override(config, path, value, label)
  config.lock()
  return config
