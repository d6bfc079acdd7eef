"""How many positions per TFLite interpreter call, on how many interpreters side by side, run a batch
fastest (bertkit.tasks.lite.TOKENS_PER_CALL, MAX_WORKERS).

    bertkit predict --model clf texts.txt --precision int8     # converts and caches the model once
    python benchmarks/lite_calls.py --model clf --precision int8 --seqs 32,64,128,256,512

For each sequence length, a batch of random token ids (32 rows) runs as calls of whole rows, at most
128, 256, 512, 1,024, 2,048 positions per call or the whole batch at once, the calls shared by
1 and by --workers interpreters side by side, timed in turn (benchmarks/timing.interleaved). Prints
one JSON line per length: median milliseconds per batch by "ROWS_PER_CALLxINTERPRETERS", and the
largest share of the CPUs other processes used during a sample.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from timing import cpu_header, interleaved  # benchmarks/timing.py

BUDGETS = (128, 256, 512, 1024, 2048)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a fine-tuned model whose TFLite conversion is cached")
    p.add_argument("--precision", choices=["fp32", "int8"], default="int8")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seqs", default="32,64,128,256,512")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=None, help="interpreters side by side (default: LiteForward's)")
    args = p.parse_args(argv)
    from bertkit.tasks.lite import LiteForward, cached_model_path

    path = cached_model_path(args.model, precision=args.precision)
    if not path.is_file():
        raise SystemExit(f"no cached TFLite model at {path}: run `bertkit predict --model {args.model} ... "
                         f"--precision {args.precision}` first")
    flatbuffer, rng, header = path.read_bytes(), np.random.default_rng(0), cpu_header()
    for seq in (int(s) for s in args.seqs.split(",")):
        b = args.batch_size
        inputs = {"input_ids": rng.integers(1000, 20000, (b, seq)).astype(np.int32),
                  "token_type_ids": np.zeros((b, seq), np.int32), "attention_mask": np.ones((b, seq), np.int32)}
        rows = sorted({min(b, max(1, budget // seq)) for budget in BUDGETS} | {b})
        forwards = {}
        for r in rows:
            for w in (1, args.workers) if r < b else (1,):  # the whole batch is one call on one interpreter
                forward = LiteForward(flatbuffer, tokens_per_call=r * seq, workers=w)
                forwards[f"{r}x{forward.workers}"] = forward
        want = forwards[f"{b}x1"](inputs)
        for forward in forwards.values():  # the pieces give the outputs of one whole call
            for name, value in forward(inputs).items():
                np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-5)
        load = {}
        times = interleaved({r: (lambda f=f: f(inputs)) for r, f in forwards.items()}, args.repeats, load=load)
        print(json.dumps({**header, "precision": args.precision, "batch": b, "seq": seq,
                          "ms_by_rows_per_call_x_interpreters": {r: round(t * 1000, 1) for r, t in times.items()},
                          "others_share_max": max(v["others_share_max"] for v in load.values())}), flush=True)


if __name__ == "__main__":
    main()
