"""`bertkit embed`: one sentence embedding per input line, as .npy or JSON Lines."""

from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

from ..data.common import INFERENCE_BATCH_SIZE


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="sentence embeddings of a file of texts (sentence-transformers folders read as they are)",
        description="Reads one text per line (a file or stdin; split on \\n only) and writes one embedding per "
                    "line, in input order, a blank line included (it embeds the empty text, as "
                    "sentence-transformers does). The pooling, normalisation and max_seq_length come from a "
                    "sentence-transformers folder (modules.json, 1_Pooling/, sentence_bert_config.json); other "
                    "checkpoints use mean pooling. Texts are read and embedded in chunks, so memory stays flat.")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("input", nargs="?", help="input file (default: stdin)")
    p.add_argument("--output", help="FILE.npy (float32 [lines, hidden]) or FILE.jsonl; default: JSON Lines on stdout")
    p.add_argument("--pooling", choices=["mean", "cls", "max", "mean_sqrt_len"],
                   help="override the folder's pooling mode")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None,
                      help="L2-normalise (default: as the folder says; off for other checkpoints)")
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    p.add_argument("--max-length", type=int, help="word pieces per text (default: the folder's max_seq_length)")
    p.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE, help="texts per forward pass")
    p.add_argument("--runtime", choices=["auto", "tensorflow", "tflite"], default="auto",
                   help="as for predict: tflite on CPUs (converted once, cached), tensorflow with a GPU")
    p.set_defaults(func=run, needs_tensorflow=False)


def run(args) -> int:
    from ..data.common import iter_text_lines
    from ..embeddings import Embedder

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    if args.output and not args.output.endswith((".npy", ".jsonl")):
        raise ValueError(f"--output {args.output}: the name must end in .npy or .jsonl")
    embedder = Embedder(args.model, pooling=args.pooling, normalize=args.normalize, max_length=args.max_length,
                        runtime=args.runtime, batch_size=args.batch_size)
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    try:
        chunks = embedder.iter_encode(text for _, text in iter_text_lines(source, args.input or "<stdin>"))
        if args.output and args.output.endswith(".npy"):
            write_npy(args.output, chunks, embedder.dimension)
        else:
            out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
            try:
                for chunk in chunks:
                    for row in chunk:
                        out.write(json.dumps({"embedding": [round(float(x), 7) for x in row]}) + "\n")
            finally:
                if args.output:
                    out.close()
    finally:
        if args.input:
            source.close()
    return 0


def write_npy(path: str, chunks, dimension: int) -> int:
    """Streams float32 row chunks into a .npy file ([rows, dimension]) without holding them all:
    rows go to a side file first (the header needs the row count), then header + rows are written
    to `path` (replaced whole). Returns the row count."""
    folder = os.path.dirname(os.path.abspath(path))
    rows = 0
    with tempfile.TemporaryFile(dir=folder) as raw:
        for chunk in chunks:
            raw.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
            rows += len(chunk)
        raw.seek(0)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (rows, dimension)})
            while block := raw.read(1 << 24):
                f.write(block)
    os.replace(f.name, path)
    return rows
