"""The `bertkit` command line. Thin: parse arguments, call the library, print.

Each module in this package that defines `register(subparsers)` adds its own sub-command(s);
they are discovered here, so adding a command never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from .. import __version__
from ..tf_start import quiet_tensorflow_start


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bertkit",
        description="BERT for TensorFlow 2 / Keras 3: vocab, pretrain, fine-tune, evaluate, export, serve.",
    )
    parser.add_argument("--version", action="version", version=f"bertkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    if getattr(args, "needs_tensorflow", True):  # predict/evaluate start it only if they need it
        quiet_tensorflow_start()
    try:
        model_dest = getattr(args, "model_dest", None)  # --model: a directory or a Hub name (options.add_model_flag)
        if model_dest and getattr(args, model_dest, None):
            from ..hub import resolve_model_path

            setattr(args, model_dest, resolve_model_path(getattr(args, model_dest), args.revision))
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        # Bad input is reported as one clear line, not a traceback.
        print(f"bertkit {args.command}: error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The console script: runs main() and leaves without interpreter finalization.

    TensorFlow can deadlock at interpreter exit when a tf.data iterator over a Python generator
    is destroyed during finalization (its destructor waits for a worker thread that waits for the
    GIL). Everything is written and flushed by then, so the process ends at once instead."""
    import os

    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
