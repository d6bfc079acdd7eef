"""The FastAPI app: endpoints, limits (`ServeOptions`) and `serve` (uvicorn); see bertkit.serve."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batching import DynamicBatcher
from .schema import RequestError, check_limits, columnar, parse_payload, read_json

log = logging.getLogger("bertkit.serve")


@dataclasses.dataclass
class ServeOptions:
    max_batch_size: int = 32          # items per forward pass; 1 = no batching
    max_wait_ms: float = 5.0          # how long a batch waits for more requests
    max_items_per_request: int = 64   # texts / pairs / questions in one request (413 above)
    max_text_chars: int = 20000       # characters per text, context included (413 above)
    max_body_bytes: int = 4 << 20     # request body size (413 above)
    max_queue_items: int = 4096       # items waiting; more -> 503 (back-pressure)


def create_app(predictor, options: ServeOptions | None = None, warm_up: bool = True) -> FastAPI:
    """The FastAPI app serving `predictor` (a `bertkit.export.runtime.Predictor` or any object with
    kind, labels, metadata, input_kinds, max_length and run(kind, items))."""
    options = options or ServeOptions()
    batcher = DynamicBatcher(predictor.run, options.max_batch_size, options.max_wait_ms, options.max_queue_items)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        if warm_up and hasattr(predictor, "warm_up"):
            await asyncio.get_running_loop().run_in_executor(None, predictor.warm_up)
        yield
        await batcher.stop()

    app = FastAPI(title="bertkit", lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(RequestError)
    async def request_error(request, exc: RequestError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_info():
        stats = dict(batcher.stats)
        stats["mean_batch_size"] = round(stats["items"] / stats["batches"], 2) if stats["batches"] else 0.0
        return {"task": predictor.kind, "labels": predictor.labels, "inputs": list(predictor.input_kinds),
                "max_length": predictor.max_length, "config": predictor.metadata,
                "limits": dataclasses.asdict(options), "batching": stats}

    async def predict(request: Request):
        kind, items, style = parse_payload(await read_json(request, options.max_body_bytes))
        if kind not in predictor.input_kinds:
            raise RequestError(422, f"this {predictor.kind} model takes {' or '.join(predictor.input_kinds)}, "
                                    f"not {kind}")
        check_limits(items, options)
        start = time.perf_counter()
        results = await batcher.submit(kind, items)
        log.debug("%d %s in %.1f ms", len(items), kind, 1000 * (time.perf_counter() - start))
        return {"predictions": results} if style == "predictions" else {"outputs": columnar(results)}

    async def embed(request: Request):
        kind, items, _ = parse_payload(await read_json(request, options.max_body_bytes))
        if predictor.kind != "encoder":
            raise RequestError(422, f"this is a {predictor.kind} model; /v1/embed serves encoder exports "
                                    "(`bertkit export --kind encoder`)")
        if kind != "texts":
            raise RequestError(422, f"/v1/embed takes texts, not {kind}")
        if predictor.metadata.get("options", {}).get("pooling", "mean") is None:  # refused before any work
            raise RequestError(422, "this encoder was exported without pooling (`bertkit export --pooling none`); "
                                "it has no sentence embedding")
        check_limits(items, options)
        results = await batcher.submit(kind, items)
        return {"embeddings": [r["sentence_embedding"] for r in results]}

    app.add_api_route("/v1/embed", embed, methods=["POST"])
    app.add_api_route("/v1/predict", predict, methods=["POST"])
    app.add_api_route("/v1/models/{name}:predict", predict, methods=["POST"])
    return app


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, options: ServeOptions | None = None,
          log_level: str = "info", runtime: str = "auto", precision: str = "auto") -> None:
    """Serves `model` over HTTP until interrupted (`bertkit serve`; endpoints in bertkit.serve).

    Args:
      model: an export directory (or one of its versions) or a model directory.
      host / port: where to listen (127.0.0.1: this machine only).
      options: limits and batching (ServeOptions: max_batch_size, max_wait_ms, max_text_chars, ...).
      log_level: uvicorn's.
      runtime: for a fine-tuned model directory, "auto" (the TFLite runtime on CPUs, as `bertkit
        predict`), "tflite" or "tensorflow" (the export's graph, built in memory). Exports always
        run as SavedModels.
      precision: "fp32"; "int8" for a fine-tuned model directory on TFLite (dynamic-range int8
        weights, as `bertkit predict --precision int8`); or "auto" (default): the engine's choice
        for this CPU (bertkit.cpu), fp32 for exports.

    Raises:
      FileNotFoundError / ValueError: the model cannot be loaded (before the server starts).

    Example:
      >>> serve("sst2_model", port=8000)  # doctest: +SKIP
      $ curl -s localhost:8000/v1/predict -d '{"texts": ["a fine film"]}'
      {"predictions": [{"label": "1", "probabilities": [0.02, 0.98]}]}
    """
    import uvicorn

    from ..export.runtime import Predictor

    predictor = Predictor.load(model, runtime=runtime, precision=precision)
    log.warning("serving %s (%s, %s, %s) on http://%s:%d", predictor.source, predictor.kind,
                predictor.metadata.get("runtime", "SavedModel"), predictor.metadata.get("precision", "fp32"),
                host, port)
    uvicorn.run(create_app(predictor, options), host=host, port=port, log_level=log_level)
