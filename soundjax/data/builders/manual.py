"""The manual-download folder of a real dataset, with a plain error when it is missing."""

import os


def manual_folder(dl_manager, dataset: str) -> str:
  """The manual download folder, or `FileNotFoundError` (not TFDS's AssertionError) if absent."""
  try:
    return os.fspath(dl_manager.manual_dir)
  except AssertionError as error:
    raise FileNotFoundError(f"{dataset}: {error}") from None
