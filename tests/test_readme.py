"""The README's Python examples run as written (in order, sharing one namespace)."""

import os
import re

from tests.toys import REPO


def test_readme_python_examples_run():
  with open(os.path.join(REPO, "README.md")) as file:
    blocks = re.findall(r"```python\n(.*?)```", file.read(), flags=re.DOTALL)
  assert blocks, "the README lost its Python examples"
  namespace = {}
  for block in blocks:
    exec(compile(block, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace["adversarial"].shape == namespace["waveforms"].shape
  assert namespace["occluded"].shape == namespace["x"].shape
  assert namespace["event_f"] == 0.5
  assert namespace["events"] == [(0.02, 0.06, "dog")]
  assert (namespace["sharded_adversarial"] == namespace["adversarial"]).all()
