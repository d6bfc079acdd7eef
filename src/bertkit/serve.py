"""`bertkit serve`: an HTTP JSON API over an export (or a model directory), with dynamic batching.

    bertkit serve --model exports/sst2 --host 127.0.0.1 --port 8000

Endpoints
  POST /v1/predict   {"texts": [...]}                  classify, ner, encoder
                     {"pairs": [[a, b], ...]}          pair classifiers, encoder
                     {"questions": [...], "contexts": [...]}   qa
                     {"questions": [...], "choices": [[...], ...]}  multiple-choice
                     TF Serving REST shapes: {"instances": [...]} (strings, [a, b] pairs or objects
                     {"text"(, "text_pair")} / {"question", "context"} / {"question", "choices"})
                     -> {"predictions": [...]};
                     {"inputs": [...] or {"text": [...], ...}} -> {"outputs": {field: [...]}}
                     Also at POST /v1/models/<name>:predict.
  POST /v1/embed     {"texts": [...]} -> {"embeddings": [[...], ...]}: an encoder export's
                     sentence embeddings (its pooling and normalisation, e.g. sentence-transformers')
  GET  /v1/model     task, labels, options, limits, batching statistics
  GET  /healthz      {"status": "ok"} once the model is loaded and warmed up

Results have the shapes `bertkit predict` prints. Errors are {"error": message} with
400 (body is not JSON / not UTF-8), 413 (body, item count or a text over its limit),
415 (content type is not application/json), 422 (missing fields, wrong types, empty strings,
an input kind the model does not take), 503 (queue full), 500 (model failure); the server
keeps serving after every one.

Long texts: a text of more than `max_text_chars` characters is refused with 413. Below that,
token limits never fail a request: classifiers truncate to the export's max_length pieces
(longest_first for pairs, as in training); NER and QA cover long inputs with overlapping windows.

Dynamic batching: requests are queued; a worker takes the first one, then waits up to
`max_wait_ms` for more (of the same input kind) until `max_batch_size` items, and runs them in
one forward pass on a worker thread while the event loop keeps accepting requests.
`max_batch_size=1` runs one request at a time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("bertkit.serve")


@dataclasses.dataclass
class ServeOptions:
    max_batch_size: int = 32          # items per forward pass; 1 = no batching
    max_wait_ms: float = 5.0          # how long a batch waits for more requests
    max_items_per_request: int = 64   # texts / pairs / questions in one request (413 above)
    max_text_chars: int = 20000       # characters per text, context included (413 above)
    max_body_bytes: int = 4 << 20     # request body size (413 above)
    max_queue_items: int = 4096       # items waiting; more -> 503 (back-pressure)


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ---- dynamic batching ---------------------------------------------------------------------

@dataclasses.dataclass
class _Job:
    kind: str
    items: list
    future: asyncio.Future


class DynamicBatcher:
    """Collects concurrent requests into batches and runs `run(kind, items) -> results` on one
    worker thread. `submit` returns this request's results, in order."""

    def __init__(self, run, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue_items: int = 4096):
        self.run, self.max_batch_size, self.max_wait_s = run, max(1, max_batch_size), max_wait_ms / 1000
        self.max_queue_items = max_queue_items
        self.stats = {"requests": 0, "items": 0, "batches": 0, "largest_batch": 0, "model_seconds": 0.0}
        self._queued_items = 0

    async def start(self) -> None:
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bertkit-model")
        self._worker = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, kind: str, items: list) -> list:
        if self._queued_items + len(items) > self.max_queue_items:
            raise RequestError(503, "the server is overloaded; retry later")
        job = _Job(kind, items, asyncio.get_running_loop().create_future())
        self._queued_items += len(items)
        self._queue.put_nowait(job)
        return await job.future

    async def _loop(self) -> None:
        carry = None
        while True:
            first = carry or await self._queue.get()
            jobs, carry = await self._collect(first)
            await self._run(first.kind, jobs)

    async def _collect(self, first: _Job):
        """`first` plus queued jobs of its kind, up to max_batch_size items or max_wait.
        Returns (jobs, a job that did not fit, or None)."""
        loop = asyncio.get_running_loop()
        jobs, n, deadline = [first], len(first.items), loop.time() + self.max_wait_s
        while n < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if job.kind != first.kind or n + len(job.items) > self.max_batch_size:
                return jobs, job
            jobs.append(job)
            n += len(job.items)
        return jobs, None

    async def _run(self, kind: str, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, kind, items)
        except Exception as e:  # the model failed: fail these requests, keep serving
            log.exception("batch of %d items failed", len(items))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(RequestError(500, f"prediction failed: {type(e).__name__}: {e}"))
            return
        finally:
            self._queued_items -= len(items)
        self.stats["requests"] += len(jobs)
        self.stats["items"] += len(items)
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        self.stats["model_seconds"] += time.perf_counter() - start
        offset = 0
        for job in jobs:
            if not job.future.done():  # done = the client went away
                job.future.set_result(results[offset: offset + len(job.items)])
            offset += len(job.items)


# ---- request parsing ------------------------------------------------------------------------

async def read_json(request: Request, limit: int):
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise RequestError(415, f"content type must be application/json, got {media_type or 'none'!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"request body over {limit} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise RequestError(400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") \
            from None


def parse_payload(payload) -> tuple[str, list, str]:
    """(input kind, items, response style "predictions" | "outputs") of a request body."""
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object, e.g. {\"texts\": [\"...\"]}")
    if "instances" in payload:
        return (*_parse_instances(payload["instances"]), "predictions")
    if "inputs" in payload:
        return (*_parse_columns(payload["inputs"], "inputs"), "outputs")
    if "texts" in payload:
        return "texts", _string_list(payload["texts"], "texts"), "predictions"
    if "pairs" in payload:
        pairs = _list(payload["pairs"], "pairs")
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise RequestError(422, "'pairs' must be a list of [text, text_pair] lists")
        return "pairs", _pairs(pairs, "pairs"), "predictions"
    if "choices" in payload:
        return (*_parse_columns({"question": payload.get("questions"), "choices": payload["choices"]},
                                "questions/choices"), "predictions")
    if "questions" in payload or "contexts" in payload:
        return (*_parse_columns({"question": payload.get("questions"), "context": payload.get("contexts")},
                                "questions/contexts"), "predictions")
    raise RequestError(422, "expected one of the fields 'texts', 'pairs', 'questions' + 'contexts', "
                            "'questions' + 'choices', 'instances' or 'inputs'")


def _parse_instances(instances) -> tuple[str, list]:
    instances = _list(instances, "instances")
    first = instances[0]
    if isinstance(first, str):
        return "texts", _string_list(instances, "instances")
    if isinstance(first, list):
        if not all(isinstance(p, list) and len(p) == 2 for p in instances):
            raise RequestError(422, "'instances' lists must all be [text, text_pair]")
        return "pairs", _pairs(instances, "instances")
    if isinstance(first, dict):
        if not all(isinstance(x, dict) and x.keys() == first.keys() for x in instances):
            raise RequestError(422, "'instances' objects must all have the same fields")
        return _parse_columns({k: [x[k] for x in instances] for k in first}, "instances")
    raise RequestError(422, "'instances' items must be strings, [text, text_pair] lists or objects")


def _parse_columns(columns, where: str) -> tuple[str, list]:
    """{"text": [...]}, {"text", "text_pair"} or {"question", "context"} columns (or a bare list)."""
    if isinstance(columns, list):
        return "texts", _string_list(columns, where)
    if not isinstance(columns, dict):
        raise RequestError(422, f"'{where}' must be a list of strings or an object of lists")
    fields = {k for k, v in columns.items() if v is not None}
    if fields == {"question", "choices"}:
        questions = _string_list(columns["question"], f"{where}.question")
        choices = _list(columns["choices"], f"{where}.choices")
        if len(choices) != len(questions):
            raise RequestError(422, f"'{where}': question and choices must have the same length")
        for i, options in enumerate(choices):
            if not isinstance(options, list) or len(options) < 2:
                raise RequestError(422, f"'{where}.choices' item {i} must be a list of at least 2 strings")
            _string_list(options, f"{where}.choices item {i}")
        return "choices", list(zip(questions, choices))
    for kind, names in (("qa", ("question", "context")), ("pairs", ("text", "text_pair")), ("texts", ("text",))):
        if fields == set(names):
            lists = [_string_list(columns[name], f"{where}.{name}") for name in names]
            if len({len(x) for x in lists}) > 1:
                raise RequestError(422, f"'{where}': {' and '.join(names)} must have the same length")
            return kind, lists[0] if kind == "texts" else list(zip(*lists))
    raise RequestError(422, f"'{where}' needs the fields text (+ text_pair), question + context or "
                            "question + choices, "
                            f"got {sorted(columns)}")


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise RequestError(422, f"'{where}' must be a list")
    if not value:
        raise RequestError(422, f"'{where}' is empty")
    return value


def _string_list(value, where: str) -> list[str]:
    for i, item in enumerate(_list(value, where)):
        if not isinstance(item, str):
            raise RequestError(422, f"'{where}' item {i} is not a string (got {type(item).__name__})")
    return value


def _pairs(pairs: list, where: str) -> list[tuple[str, str]]:
    _string_list([x for p in pairs for x in p], where)
    return [(a, b) for a, b in pairs]


def check_limits(items: list, options: ServeOptions) -> None:
    if len(items) > options.max_items_per_request:
        raise RequestError(413, f"{len(items)} inputs in one request; the limit is {options.max_items_per_request}")
    for i, item in enumerate(items):
        for text in (item,) if isinstance(item, str) else _flat(item):
            if not text.strip():
                raise RequestError(422, f"input {i} is empty or only whitespace")
            if len(text) > options.max_text_chars:
                raise RequestError(413, f"input {i} has {len(text)} characters; the limit is {options.max_text_chars}")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError(422, f"input {i} is not valid Unicode (lone surrogate)") from None


def _flat(item) -> list[str]:
    """The strings of an item: a pair, or a (question, [choices]) tuple."""
    return [x for part in item for x in ([part] if isinstance(part, str) else part)]


def columnar(results: list[dict]) -> dict:
    """TF Serving's columnar "outputs" form of per-item results."""
    return {key: [r[key] for r in results] for key in results[0]} if results else {}


# ---- the app --------------------------------------------------------------------------------

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
        check_limits(items, options)
        results = await batcher.submit(kind, items)
        if "sentence_embedding" not in results[0]:
            raise RequestError(422, "this encoder was exported without pooling (`bertkit export --pooling none`); "
                                "it has no sentence embedding")
        return {"embeddings": [r["sentence_embedding"] for r in results]}

    app.add_api_route("/v1/embed", embed, methods=["POST"])
    app.add_api_route("/v1/predict", predict, methods=["POST"])
    app.add_api_route("/v1/models/{name}:predict", predict, methods=["POST"])
    return app


def serve(model: str, host: str = "127.0.0.1", port: int = 8000, options: ServeOptions | None = None,
          log_level: str = "info") -> None:
    """Loads `model` (an export or a model directory) and serves it until interrupted."""
    import uvicorn

    from .export.runtime import Predictor

    predictor = Predictor.load(model)
    log.warning("serving %s (%s) on http://%s:%d", predictor.source, predictor.kind, host, port)
    uvicorn.run(create_app(predictor, options), host=host, port=port, log_level=log_level)
