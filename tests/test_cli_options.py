"""The CLI's flags: generated from the options dataclasses (one default each), one name per concept,
and the old names still accepted for one release with a warning."""

import dataclasses

import pytest

from bertkit.cli import build_parser
from bertkit.cli.options import options_from_args
from bertkit.tasks import FinetuneOptions


def parse(*argv):
    return build_parser().parse_args([str(a) for a in argv])


def test_finetune_flags_default_to_the_dataclass():
    args = parse("finetune", "classify", "--model", "m", "--train", "t.tsv", "--out", "o")
    assert options_from_args(FinetuneOptions, args, progress=False) == FinetuneOptions(progress=False)
    args = parse("finetune", "ner", "--model", "m", "--train", "t", "--out", "o", "--epochs", "1.5", "--no-xla",
                 "--early-stopping", "2", "--dropout", "0.2", "--freeze-encoder", "--precision", "bf16")
    options = options_from_args(FinetuneOptions, args)
    assert (options.epochs, options.xla, options.patience, options.dropout, options.freeze_encoder,
            options.precision) == (1.5, False, 2, 0.2, True, "bf16")
    assert parse("finetune", "ner", "--model", "m", "--train", "t", "--out", "o", "--xla").xla is True


def test_every_finetune_option_but_progress_has_a_flag():
    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["finetune"].format_help()
    flags = {"patience": "--early-stopping"}
    for field in dataclasses.fields(FinetuneOptions):
        if field.name != "progress":
            assert flags.get(field.name, "--" + field.name.replace("_", "-")) in help_text, field.name
    assert "--no-progress" in help_text


@pytest.mark.parametrize("argv, dest, value, new", [
    (["finetune", "classify", "--init", "m", "--train", "t", "--out", "o"], "model", "m", "--model"),
    (["pretrain", "--corpus", "c", "--vocab", "v", "--out", "o", "--seq-len", "64"], "max_length", 64, "--max-length"),
    (["pretrain", "--corpus", "c", "--vocab", "v", "--out", "o", "--init-from", "m"], "model", "m", "--model"),
    (["pretrain-data", "--corpus", "c", "--vocab", "v", "--out", "o", "--seq-len", "64"], "max_length", 64,
     "--max-length"),
    (["pretrain-data", "--corpus", "c", "--vocab", "v", "--out", "o", "--quiet"], "progress", False, "--no-progress"),
    (["export", "--model", "m", "--out", "o", "--seq-length", "64"], "max_length", 64, "--max-length"),
    (["quickstart", "--seq-len", "64"], "max_length", 64, "--max-length"),
])
def test_old_flag_names_still_work_and_warn(capsys, argv, dest, value, new):
    assert getattr(parse(*argv), dest) == value
    old = next(a for a in argv if a.startswith("--") and a not in ("--corpus", "--vocab", "--out", "--train",
                                                                      "--model"))
    assert f"{old} is deprecated and will be removed; use {new}" in capsys.readouterr().err


def test_new_names_and_hidden_old_ones():
    assert parse("pretrain", "--corpus", "c", "--vocab", "v", "--out", "o", "--max-length", "64").max_length == 64
    assert parse("pretrain-data", "--corpus", "c", "--vocab", "v", "--out", "o", "--no-progress").progress is False
    assert parse("vocab", "--corpus", "c", "--vocab-size", "100", "--out", "o").lower_case is True
    assert parse("vocab", "--corpus", "c", "--vocab-size", "100", "--out", "o", "--cased").lower_case is False
    assert parse("predict", "--model", "m", "--no-progress").progress is False
    from bertkit.cli.quickstart import options_from_args as quickstart_options

    assert quickstart_options(parse("quickstart", "--no-progress")).progress is False
    assert quickstart_options(parse("quickstart")).progress is None
    assert parse("embed", "--model", "m").progress is True
    pretrain_help = build_parser()._subparsers._group_actions[0].choices["pretrain"].format_help()
    assert "--max-length" in pretrain_help and "--seq-len" not in pretrain_help and "--init-from" not in pretrain_help


def test_old_python_option_names_still_work_and_warn():
    from bertkit.data.pretraining import PretrainingDataConfig
    from bertkit.tasks.options import PretrainOptions

    with pytest.warns(DeprecationWarning, match=r"PretrainOptions\(seq_len=...\) is deprecated; use max_length="):
        options = PretrainOptions(seq_len=64, init_from="m")
    assert (options.max_length, options.model) == (64, "m")
    with pytest.warns(DeprecationWarning, match="max_seq_length"):
        config = PretrainingDataConfig(max_seq_length=32, max_predictions_per_seq=4)
    assert (config.max_length, config.max_predictions) == (32, 4)
    from bertkit.quickstart.options import QuickstartOptions

    with pytest.warns(DeprecationWarning, match=r"QuickstartOptions\(seq_len=...\) is deprecated; use max_length="):
        assert QuickstartOptions(seq_len=64).max_length == 64


def test_preprocessor_length_is_max_length_and_the_old_name_warns(tiny_config, tmp_path, minilm_path):
    from bertkit.export import build_module
    from bertkit.model.encoder import BertEncoder
    from bertkit.pretrained import save_model

    save_model(BertEncoder(tiny_config).build_weights(), str(tmp_path), tokenizer_dir=minilm_path)
    assert build_module(str(tmp_path), "preprocessor", max_length=40).seq_length == 40
    with pytest.warns(DeprecationWarning, match=r"build_module\(seq_length=...\) is deprecated"):
        assert build_module(str(tmp_path), "preprocessor", seq_length=24).seq_length == 24


def test_finetune_init_keyword_still_works_and_warns(monkeypatch):
    import bertkit.tasks.base as base

    seen = []
    monkeypatch.setattr(base, "resolve_model_path", lambda path: seen.append(path) or (_ for _ in ()).throw(
        FileNotFoundError(path)))
    with pytest.warns(DeprecationWarning, match=r"finetune\(init=...\) is deprecated; use model="):
        with pytest.raises(FileNotFoundError):
            base.finetune(None, init="old", train_file="t", out_dir="o")
    assert seen == ["old"]


def test_each_flag_default_is_the_declared_one():
    """The help quotes the defaults of the dataclasses and tasks, which are declared once."""
    from bertkit.cli import build_parser
    from bertkit.quickstart.options import QuickstartOptions

    commands = build_parser()._subparsers._group_actions[0].choices
    quickstart = " ".join(commands["quickstart"].format_help().split())
    assert f"(default {QuickstartOptions().max_length})" in quickstart
    assert f"(default: {QuickstartOptions().vocab_size} for the world" in quickstart
    finetune = " ".join(commands["finetune"].format_help().split())
    assert "classify/regression/multilabel/ner/qa/multiple-choice: max tokens per feature (default 128; qa 384)" \
        in finetune
    assert "qa: max question tokens (default 64)" in finetune
    data = " ".join(commands["pretrain-data"].format_help().split())
    assert "(default 0.15)" in data and "(default 4000000)" in data


def test_pretraining_data_written_with_the_old_key_reads(tmp_path):
    import json

    from bertkit.data.records import FORMAT_VERSION, METADATA_FILE, read_metadata

    (tmp_path / METADATA_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, "seq_len": 64}))
    assert read_metadata(tmp_path)["max_length"] == 64


def test_flag_args_is_the_inverse_of_options_from_args():
    """The quickstart prints commands made by flag_args from the options it ran with; parsing them
    must give those options back."""
    from bertkit.cli.finetune import FINETUNE_HELP
    from bertkit.cli.options import flag_args
    from bertkit.cli.pretrain import PRETRAIN_HELP
    from bertkit.tasks.options import PretrainOptions

    pretrain = PretrainOptions(config="tiny", max_length=64, steps=7, learning_rate=3e-4, warmup_steps=2, xla=False,
                               dynamic_mask=True, seed=3, keep_checkpoints=1, errors="replace", strategy="none",
                               dupe_factor=2)
    args = parse("pretrain", "--corpus", "c", "--vocab", "v", "--out", "o", *flag_args(pretrain, PRETRAIN_HELP))
    assert options_from_args(PretrainOptions, args, progress=True) == pretrain
    finetune = FinetuneOptions(epochs=1.5, batch_size=8, learning_rate=1e-4, xla=False, patience=2, dropout=0.0,
                               freeze_layers=2, random_init=True, pad_multiple=8)
    args = parse("finetune", "classify", "--model", "m", "--train", "t", "--out", "o",
                 *flag_args(finetune, FINETUNE_HELP, {"patience": "--early-stopping"}))
    assert options_from_args(FinetuneOptions, args, progress=True) == finetune


def test_precision_defaults_per_command():
    """Commands that run a model for its outputs default to the CPU's choice (bertkit.cpu);
    evaluate measures the trained model, so it defaults to fp32."""
    assert parse("predict", "--model", "m", "in.txt").precision == "auto"
    assert parse("embed", "--model", "m", "in.txt", "--output", "o.npy").precision == "auto"
    assert parse("serve", "--model", "m").precision == "auto"
    assert parse("evaluate", "--model", "m", "--data", "d.tsv").precision == "fp32"
    assert parse("evaluate", "--model", "m", "--data", "d.tsv", "--precision", "auto").precision == "auto"
