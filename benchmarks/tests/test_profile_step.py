"""benchmarks/profile_step.py traces the steps it is asked for and splits their op time by part."""

import profile_step  # benchmarks/, on the path by conftest.py

from bertkit.training import trainer


def test_profile_splits_the_traced_steps(tiny_dir, data, tmp_path, capsys):
    build_step = trainer.Trainer._build_step
    code = profile_step.profile(str(tmp_path / "trace"), first=2, steps=2, argv=[
        "finetune", "ner", "--model", str(tiny_dir), "--train", str(data / "train.conll"),
        "--out", str(tmp_path / "out"), "--max-steps", "4", "--batch-size", "8", "--no-progress"])
    assert code == 0
    assert trainer.Trainer._build_step is build_step  # the tracing hook is removed again
    capsys.readouterr()
    profile_step.summarise(str(tmp_path / "trace"), 2)
    rows = {line[:40].strip(): line[40:].split() for line in capsys.readouterr().out.splitlines()}
    forward, backward = map(float, rows["matmuls"])
    assert forward > 0 and backward > 0
    assert float(rows["LayerNorm"][1]) > 0 and float(rows["optimizer: AdamW"][0]) > 0
