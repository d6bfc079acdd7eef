"""Smoke runs of `bertkit quickstart --fast`: every step runs and writes its outputs and report.

The metrics of a smoke run mean nothing (a 1-layer model, a few steps); the real run's quality
bars are measured by `make quickstart` itself (see the report of issue 7).
"""

import io
import json
import shlex

import pytest

from bertkit.cli import build_parser
from bertkit.cli import main as cli
from bertkit.cli.quickstart import options_from_args
from bertkit.quickstart.pipeline import fast_options, run_quickstart


def parse(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def check_commands_parse(metrics):
    """Every `bertkit ...` command of the report is valid for this CLI (so commands.sh runs)."""
    n = 0
    for step in metrics["steps"]:
        for line in step["commands"]:
            argv = shlex.split(line)
            if argv[0] == "bertkit":
                parse(*argv[1:])
                n += 1
    return n


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs") / "out"
    stream = io.StringIO()
    metrics = run_quickstart(fast_options(out=str(out), export=False, progress=False), stream=stream)
    return out, metrics, stream.getvalue()


def test_fast_run_writes_every_step_and_the_report(fast_run):
    out, metrics, printed = fast_run
    names = [s["name"] for s in metrics["steps"]]
    assert names == ["data", "vocab", "pretrain", "pretrain_eval", "classify", "ner", "qa", "multilabel",
                     "regression"]
    for i, name in enumerate(names, 1):  # a header and a one-line result per step
        assert f"[{i}/{len(names)}]" in printed and f"✓ {name}:" in printed
    report = out / "report"
    for name in ("metrics.json", "index.html", "commands.sh", "pretrain_curves.png", "finetune_curves.png"):
        assert (report / name).stat().st_size > 0, name
    assert json.loads((report / "metrics.json").read_text())["results"].keys() >= {
        "pretrain", "classify", "ner", "qa", "multilabel", "regression"}
    page = (report / "index.html").read_text()
    assert "pretrain_curves.png" in page and "qa dev f1" in page and "MLM accuracy" in page
    for task in ("classify", "ner", "qa", "multilabel", "regression"):
        assert (out / task / "config.json").exists() and (out / task / "model.safetensors").exists()


def test_results_hold_the_metrics_of_each_head(fast_run):
    _, metrics, _ = fast_run
    r = metrics["results"]
    assert 0 <= r["pretrain"]["mlm_accuracy"] <= 1 and 0 <= r["pretrain"]["unigram_accuracy"] <= 1
    assert r["pretrain"]["heldout"] and r["pretrain"]["instances"] > 0
    assert {"accuracy", "macro_f1"} <= set(r["classify"]) and {"precision", "recall", "f1"} <= set(r["ner"])
    assert {"exact_match", "f1"} <= set(r["qa"])
    assert {"micro_f1", "macro_f1"} <= set(r["multilabel"]) and {"pearson", "spearman"} <= set(r["regression"])
    assert all(s["seconds"] >= 0 and s["cpu_seconds"] >= 0 for s in metrics["steps"])


def test_report_commands_are_valid_commands(fast_run):
    out, metrics, _ = fast_run
    assert check_commands_parse(metrics) >= 8  # vocab, pretrain, 3 x (finetune + evaluate)
    script = (out / "report" / "commands.sh").read_text()
    assert script.startswith("#!/bin/sh") and "bertkit pretrain" in script
    assert "python -m bertkit.quickstart.world" in script and "python -m bertkit.quickstart.heldout" in script


def test_commands_sh_vocab_step_reproduces_the_vocab(fast_run, tmp_path):
    out, metrics, _ = fast_run
    vocab_cmd = next(c for s in metrics["steps"] for c in s["commands"] if c.startswith("bertkit vocab"))
    argv = shlex.split(vocab_cmd)[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "vocab")
    assert cli(argv + ["--no-progress"]) == 0
    assert (tmp_path / "vocab" / "vocab.txt").read_text() == (out / "vocab" / "vocab.txt").read_text()


def test_a_second_run_replaces_a_quickstart_folder_but_not_others(fast_run, tmp_path):
    out, _, _ = fast_run
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not a quickstart folder"):
        run_quickstart(fast_options(out=str(other)), stream=io.StringIO())
    assert (other / "keep.txt").exists()


def test_cli_options(tmp_path):
    args = parse("quickstart", "--out", tmp_path, "--fast", "--no-export")
    options = options_from_args(args)
    assert options.fast and not options.export and options.out == str(tmp_path)
    full = options_from_args(parse("quickstart"))
    assert full.out == "quickstart_out" and not full.fast and full.export and full.synthetic
    real = options_from_args(parse("quickstart", "--corpus", "a.txt", "--qa-train", "q.json", "--epochs", "1"))
    assert not real.synthetic and real.vocab_size == 8000 and real.qa_train == "q.json"
    assert all(s.epochs == 1 for s in real.tasks.values())
    with pytest.raises(ValueError, match="needs --corpus"):
        options_from_args(parse("quickstart", "--ner-train", "x.conll"))


def test_real_data_mode_runs_only_the_given_tasks(fast_run, tmp_path):
    """The same pipeline on files of 'real' data (here: the world's own files, renamed)."""
    out, _, _ = fast_run
    data = out / "data"
    options = fast_options(out=str(tmp_path / "real"), corpus=[str(data / "corpus.txt")],
                           classify_train=str(data / "classify_train.tsv"),
                           classify_dev=str(data / "classify_dev.tsv"), export=False, progress=False)
    stream = io.StringIO()
    metrics = run_quickstart(options, stream=stream)
    assert [s["name"] for s in metrics["steps"]] == ["data", "vocab", "pretrain", "pretrain_eval", "classify"]
    assert not metrics["synthetic"] and not metrics["results"]["pretrain"]["heldout"]
    assert "accuracy" in metrics["results"]["classify"] and "your data" in stream.getvalue()


@pytest.mark.slow
def test_fast_run_with_export_answers_a_request_per_task(tmp_path):
    """`bertkit quickstart --fast` through the CLI, export and requests included (~2-3 min on 2 CPUs):
    each export answers one request as `bertkit serve` would."""
    out = tmp_path / "out"
    assert cli(["quickstart", "--fast", "--out", str(out)]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    requests = {r["task"]: r for r in metrics["results"]["requests"]}
    tasks = ["classify", "ner", "qa", "multilabel", "regression"]
    assert list(requests) == tasks
    topics = {"sports", "music", "food", "science"}
    assert requests["classify"]["answer"]["label"] in topics
    assert isinstance(requests["ner"]["answer"]["entities"], list)
    assert isinstance(requests["qa"]["answer"]["answer"], str)
    assert set(requests["multilabel"]["answer"]["labels"]) <= topics and set(requests["multilabel"]["expected"]) <= topics
    assert isinstance(requests["regression"]["answer"]["score"], float)
    for task in tasks:
        assert (out / "export" / task / "1" / "saved_model.pb").exists()
    assert check_commands_parse(metrics) >= 12
