"""`bertkit serve`: HTTP JSON API (FastAPI + uvicorn) with dynamic batching."""

from __future__ import annotations

from .finetune import add_runtime_flags
from .options import add_model_flag


def register(subparsers) -> None:
    # The server modules (FastAPI) are imported only when the command runs; unset limits take
    # the defaults of bertkit.serve.ServeOptions.
    p = subparsers.add_parser(
        "serve", help="serve a model or an export over HTTP (JSON, dynamic batching)",
        description="POST /v1/predict {\"texts\": [...]} | {\"pairs\": [[a, b], ...]} | "
                    "{\"questions\": [...], \"contexts\": [...]} (also TF Serving's {\"instances\"} / "
                    "{\"inputs\"}); GET /v1/model; GET /healthz. Limits default to bertkit.serve.ServeOptions.")
    add_model_flag(p, "an export directory (or one of its versions) or a model")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch-size", type=int, help="items per forward pass (default 32)")
    p.add_argument("--max-wait-ms", type=float, help="how long a batch waits to fill (default 5)")
    p.add_argument("--no-batching", action="store_true", help="one request at a time (--max-batch-size 1)")
    p.add_argument("--max-items", type=int, help="inputs per request; more -> 413")
    p.add_argument("--max-text-chars", type=int, help="characters per text; longer -> 413")
    add_runtime_flags(p)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from ..serve import ServeOptions, serve

    given = {"max_batch_size": 1 if args.no_batching else args.max_batch_size, "max_wait_ms": args.max_wait_ms,
             "max_items_per_request": args.max_items, "max_text_chars": args.max_text_chars}
    options = ServeOptions(**{k: v for k, v in given.items() if v is not None})
    serve(args.model, args.host, args.port, options, log_level=args.log_level, runtime=args.runtime,
          precision=args.precision)
    return 0
