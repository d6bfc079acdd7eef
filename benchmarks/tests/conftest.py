"""Checks of the benchmark scripts themselves (they are not part of bertkit, so tests/ never imports
them). The fixtures are the suite's own: tests/conftest.py also sets the environment (offline Hub,
a fresh converted-model cache, fp32 for `--precision auto`)."""

import sys
from pathlib import Path

from tests.conftest import minilm_path, shared_data  # noqa: F401  (fixtures)
from tests.tasks.conftest import data, tiny_dir  # noqa: F401  (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripts import each other by name
