"""The training loop: loss goes down, exact resume after kill -9, accumulation and data
parallelism equal one big batch, NaN stops the run. Runs are subprocesses (tests/training/tiny_run.py)
so that each has a fresh TensorFlow (logical devices and multi-worker must be set at start-up)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args, env=None, timeout=300):
    cmd = [sys.executable, "-m", "tests.training.tiny_run", *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_loss_goes_down_and_resume_after_kill_equals_uninterrupted(tmp_path):
    full = run(tmp_path / "full", 40)
    assert np.mean(full["loss"][-5:]) < np.mean(full["loss"][:5]) - 0.2

    # kill -9 once the step-20 checkpoint exists, then re-run the same command
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tests.training.tiny_run", str(out), "40", "--checkpoint-every", "20"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 1800  # a guard against a hung run, not a speed check
    state = out / "checkpoints" / "checkpoint"  # written by the CheckpointManager after the files
    while not (state.exists() and "ckpt-20" in state.read_text()):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no step-20 checkpoint after 30 minutes: the run hangs"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run(out, 40, "--checkpoint-every", "20")
    assert resumed["resumed_from"] in (20, 40) and resumed["resumed_from"] is not None
    assert resumed["weights"] == full["weights"]
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=0, atol=0)


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    one = run(tmp_path / "one", 8, "--dropout", 0, "--batch", 16)
    acc = run(tmp_path / "acc", 8, "--dropout", 0, "--batch", 16, "--accumulation", 4)
    np.testing.assert_allclose(acc["loss"], one["loss"], rtol=1e-5)
    assert abs(acc["weights"] - one["weights"]) / one["weights"] < 1e-5


def test_row_slice_gradients_train_as_dense_ones(tmp_path):
    """Graph mode keeps the embedding tables' gradients as row slices through the global norm and
    clipping (the tiny vocabulary repeats ids within a batch, whose slices must be summed before
    the norm); the run equals one that densifies them at once, also with accumulation."""
    sparse = run(tmp_path / "sparse", 8, "--xla", 0, "--lr", 1e-2)
    dense = run(tmp_path / "dense", 8, "--xla", 0, "--lr", 1e-2, "--dense-grads", 1)
    np.testing.assert_allclose(sparse["loss"], dense["loss"], rtol=1e-6)
    assert abs(sparse["weights"] - dense["weights"]) / dense["weights"] < 1e-6
    acc = run(tmp_path / "acc", 8, "--xla", 0, "--lr", 1e-2, "--dropout", 0, "--accumulation", 4)
    one = run(tmp_path / "one", 8, "--xla", 0, "--lr", 1e-2, "--dropout", 0, "--dense-grads", 1)
    np.testing.assert_allclose(acc["loss"], one["loss"], rtol=1e-5)
    assert abs(acc["weights"] - one["weights"]) / one["weights"] < 1e-5


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    one = run(tmp_path / "one", 8, "--dropout", 0, "--xla", 0)
    two = run(tmp_path / "two", 8, "--dropout", 0, "--xla", 0, "--strategy", "mirrored", "--logical-cpus", 2)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_match_one_worker(tmp_path):
    one = run(tmp_path / "one", 8, "--dropout", 0, "--xla", 0)
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        cmd = [sys.executable, "-m", "tests.training.tiny_run", str(tmp_path / "multi"), "8", "--dropout", "0",
               "--xla", "0", "--strategy", "multiworker"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    chief = json.loads(outputs[0][0].strip().splitlines()[-1])
    np.testing.assert_allclose(chief["loss"], one["loss"], rtol=1e-4)
    assert (tmp_path / "multi" / "checkpoints" / "ckpt-8.index").exists()


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    cmd = [sys.executable, "-m", "tests.training.tiny_run", str(tmp_path / "nan"), "40", "--lr", "1e12",
           "--checkpoint-every", "1", "--xla", "0"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "TrainingDiverged" in proc.stderr and "at step" in proc.stderr
    index = sorted((tmp_path / "nan" / "checkpoints").glob("ckpt-*.index"))
    assert index, "no good checkpoint kept"


def test_history_survives_a_kill_while_it_is_written(tmp_path, monkeypatch):
    """A kill -9 can land inside the history write (CI saw a resumed run fail on a truncated
    history.json): the file is replaced whole, so the previous complete version stays."""
    from types import SimpleNamespace

    from bertkit.training import trainer as trainer_module

    fake = SimpleNamespace(chief=True, out_dir=str(tmp_path), history=[{"step": 1, "loss": 2.0}])
    fake._history_path = lambda: str(tmp_path / "history.json")
    trainer_module.Trainer._save_history(fake)

    def dies_halfway(obj, f, **kwargs):
        f.write('[{"step": 1, "lo')
        raise SystemExit("killed")

    fake.history.append({"step": 2, "loss": 1.5})
    monkeypatch.setattr(trainer_module.json, "dump", dies_halfway)
    with pytest.raises(SystemExit):
        trainer_module.Trainer._save_history(fake)
    assert json.loads((tmp_path / "history.json").read_text()) == [{"step": 1, "loss": 2.0}]
    monkeypatch.undo()
    trainer_module.Trainer._save_history(fake)
    assert json.loads((tmp_path / "history.json").read_text()) == fake.history
