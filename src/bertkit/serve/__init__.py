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

from .app import ServeOptions, create_app, serve
from .batching import DynamicBatcher
from .schema import RequestError, parse_payload

__all__ = ["ServeOptions", "create_app", "serve", "DynamicBatcher", "RequestError", "parse_payload"]
