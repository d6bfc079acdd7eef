"""`bertkit convert SRC OUT`: any HF or Google checkpoint directory -> a bertkit (HF-layout) directory."""

from __future__ import annotations

import os


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a Hugging Face or original Google BERT checkpoint to a bertkit directory",
        description="Reads a HF directory (config.json, model.safetensors, vocab.txt) or a google-research/bert "
                    "TF1 checkpoint directory (bert_config.json, bert_model.ckpt.*, vocab.txt); the format is "
                    "detected from the files. Pretraining heads and task heads are kept when present.")
    p.add_argument("src", help="checkpoint directory")
    p.add_argument("out", help="output directory (written in the HF layout)")
    casing = p.add_mutually_exclusive_group()
    casing.add_argument("--lower-case", dest="lower_case", action="store_true", default=None,
                        help="the vocab is uncased (Google checkpoints do not record it)")
    casing.add_argument("--cased", dest="lower_case", action="store_false",
                        help="the vocab is cased")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..convert.checkpoint import detect_format
    from ..pretrained import load_model, save_model

    fmt = detect_format(args.src)
    model = load_model(args.src)
    save_model(model, args.out)
    write_tokenizer_files(args.src, args.out, args.lower_case)
    n = sum(int(v.numpy().size) for v in model.trainable_variables)
    print(f"converted {fmt} checkpoint {args.src} -> {args.out} "
          f"({type(model).__name__}, {n / 1e6:.1f}M parameters)")
    return 0


def write_tokenizer_files(src: str, out: str, lower_case: bool | None) -> None:
    """Copies vocab.txt and the tokenizer settings; Google checkpoints carry no casing, so it comes
    from --lower-case/--cased or is read off the vocab (any upper-case entry means cased)."""
    import json
    import shutil

    vocab = os.path.join(src, "vocab.txt")
    if not os.path.exists(vocab):
        raise FileNotFoundError(f"{src}: no vocab.txt")
    shutil.copyfile(vocab, os.path.join(out, "vocab.txt"))
    settings_file = os.path.join(src, "tokenizer_config.json")
    settings = {}
    if os.path.exists(settings_file):
        with open(settings_file, encoding="utf-8") as f:
            settings = json.load(f)
    if lower_case is not None:
        settings["do_lower_case"] = lower_case
    elif "do_lower_case" not in settings:
        with open(vocab, encoding="utf-8") as f:
            words = [w.strip() for w in f if not w.startswith("[")]
        settings["do_lower_case"] = not any(w != w.lower() for w in words)
    settings.setdefault("tokenizer_class", "BertTokenizer")
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2, sort_keys=True)
        f.write("\n")
