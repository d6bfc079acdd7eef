"""`bertkit embed`: one sentence embedding per input line, as .npy or JSON Lines; `bertkit search`:
the corpus lines closest to a query."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile

import numpy as np

from ..data.common import INFERENCE_BATCH_SIZE
from ..embeddings import POOLING_MODES
from ..files import BLOCK_BYTES, hash_file, write_atomically
from .finetune import add_runtime_flags
from .options import add_model_flag, add_progress_flag

log = logging.getLogger("bertkit")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="sentence embeddings of a file of texts (sentence-transformers folders read as they are)",
        description="Reads one text per line (a file or stdin; split on \\n only) and writes one embedding per "
                    "line, in input order, a blank line included (it embeds the empty text, as "
                    "sentence-transformers does). The pooling, normalisation and max_seq_length come from a "
                    "sentence-transformers folder (modules.json, 1_Pooling/, sentence_bert_config.json); other "
                    "checkpoints use mean pooling. Texts are read and embedded in chunks, so memory stays flat.")
    add_model_flag(p, "the model")
    p.add_argument("input", nargs="?", help="input file (default: stdin)")
    p.add_argument("--output", help="FILE.npy (float32 [lines, hidden]) or FILE.jsonl; default: JSON Lines on stdout")
    p.add_argument("--pooling", choices=POOLING_MODES,
                   help="override the folder's pooling mode")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None,
                      help="L2-normalise (default: as the folder says; off for other checkpoints)")
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    p.add_argument("--max-length", type=int, help="word pieces per text (default: the folder's max_seq_length)")
    p.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE, help="texts per forward pass")
    add_runtime_flags(p)
    add_progress_flag(p)
    p.set_defaults(func=run, needs_tensorflow=False)

    s = subparsers.add_parser(
        "search", help="semantic search: the corpus lines closest to each query (cosine)",
        description="Embeds every line of --corpus (or reads them from --index) and each --query, and prints one "
                    "JSON object per query: {\"query\", \"results\": [{\"line\", \"text\", \"score\"}]}, "
                    "best first (line numbers start at 1). Exact search with numpy, fine up to about a million "
                    "lines; beyond, use an approximate index (e.g. FAISS) on `bertkit embed`'s vectors.")
    add_model_flag(s, "the model")
    s.add_argument("--corpus", required=True, help="one text per line")
    s.add_argument("--query", action="append", required=True, help="a query text (repeat for several)")
    s.add_argument("--top-k", type=int, default=5, help="results per query (5)")
    s.add_argument("--index", help="FILE.npz: the corpus embeddings, made on the first run and reused while "
                                   "the corpus file and the model are unchanged")
    s.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE, help="texts per forward pass")
    add_runtime_flags(s)
    s.set_defaults(func=run_search, needs_tensorflow=False)


def run_search(args) -> int:
    from ..data.common import read_text_lines
    from ..embeddings import Embedder, semantic_search

    if args.top_k < 1:
        raise ValueError(f"--top-k must be positive, got {args.top_k}")
    if args.index and not args.index.endswith(".npz"):
        raise ValueError(f"--index {args.index}: the name must end in .npz")
    embedder = Embedder(args.model, runtime=args.runtime, batch_size=args.batch_size, precision=args.precision)
    texts = read_text_lines(args.corpus)
    key = _index_key(args.corpus, args.model, embedder)
    corpus = _load_index(args.index, key) if args.index else None
    if corpus is None:
        corpus = np.concatenate(list(embedder.iter_encode(texts))) if texts else np.zeros((0, embedder.dimension))
        if args.index:
            def save(tmp):
                with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
                    np.savez(f, embeddings=corpus.astype(np.float32), key=np.array(key))

            write_atomically(args.index, save)
    hits = semantic_search(embedder.encode(args.query), corpus, top_k=args.top_k)
    for query, found in zip(args.query, hits):
        print(json.dumps({"query": query, "results": [{"line": i + 1, "text": texts[i], "score": round(score, 6)}
                                                      for i, score in found]}, ensure_ascii=False))
    return 0


def _index_key(corpus: str, model: str, embedder) -> str:
    """What the saved embeddings depend on: the corpus bytes, the model's weights, the pooling (and
    Dense modules) and the precision."""
    from ..tasks.lite import model_digest

    digest = hashlib.sha256()
    hash_file(digest, corpus)
    pooling = embedder.pooling
    variant = f"{pooling.mode}:{pooling.normalize}:{pooling.max_seq_length}{pooling.dense_key()}"
    if embedder.precision != "fp32":  # fp32 keeps the keys of indexes saved before precisions existed
        variant += f":{embedder.precision}"
    return f"{digest.hexdigest()}:{model_digest(model, variant)}"


def _load_index(path: str, key: str):
    if not os.path.exists(path):
        return None
    with np.load(path) as saved:
        if str(saved["key"]) == key:
            return saved["embeddings"]
    log.warning("%s was made from another corpus or model; embedding the corpus again", path)
    return None


def run(args) -> int:
    from ..data.common import iter_text_lines
    from ..embeddings import Embedder
    from .progress import with_progress

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    if args.output and not args.output.endswith((".npy", ".jsonl")):
        raise ValueError(f"--output {args.output}: the name must end in .npy or .jsonl")
    embedder = Embedder(args.model, pooling=args.pooling, normalize=args.normalize, max_length=args.max_length,
                        runtime=args.runtime, batch_size=args.batch_size, precision=args.precision)
    source = open(args.input, "rb") if args.input else sys.stdin.buffer
    try:
        lines = with_progress(iter_text_lines(source, args.input or "<stdin>"), args.input, "embed", args.progress)
        chunks = embedder.iter_encode(text for _, text in lines)
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
    rows = 0
    with tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(path))) as raw:
        for chunk in chunks:
            raw.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
            rows += len(chunk)

        def write(tmp):
            raw.seek(0)
            with open(tmp, "wb") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": "<f4", "fortran_order": False, "shape": (rows, dimension)})
                shutil.copyfileobj(raw, f, BLOCK_BYTES)

        write_atomically(path, write)
    return rows
