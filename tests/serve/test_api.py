"""The HTTP API with a stand-in model (fast): request shapes, every kind of bad input, batching."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient

from bertkit.serve import DynamicBatcher, RequestError, ServeOptions, create_app


class FakePredictor:
    """Labels a text "pos" when it contains "good"; fails on "boom"; records batch sizes."""

    kind, labels, max_length = "classify", ["neg", "pos"], 128
    metadata = {"kind": "classify", "labels": ["neg", "pos"]}
    input_kinds = ("texts", "pairs")

    def __init__(self, delay: float = 0.0):
        self.batches, self.delay, self.lock = [], delay, threading.Lock()

    def run(self, kind, items):
        with self.lock:
            self.batches.append(len(items))
        time.sleep(self.delay)
        texts = [x if kind == "texts" else x[0] + " " + x[1] for x in items]
        if any("boom" in t for t in texts):
            raise RuntimeError("model exploded")
        return [{"label": "pos" if "good" in t else "neg", "probabilities": [0.1, 0.9] if "good" in t else [0.9, 0.1]}
                for t in texts]


@pytest.fixture
def client():
    options = ServeOptions(max_items_per_request=4, max_text_chars=50, max_body_bytes=2000)
    with TestClient(create_app(FakePredictor(), options)) as c:
        yield c


def test_health_and_model_info(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["task"] == "classify" and info["labels"] == ["neg", "pos"] and info["inputs"] == ["texts", "pairs"]
    assert info["limits"]["max_items_per_request"] == 4


@pytest.mark.parametrize("body, expected", [
    ({"texts": ["good film", "bad film"]}, {"predictions": [{"label": "pos", "probabilities": [0.1, 0.9]},
                                                            {"label": "neg", "probabilities": [0.9, 0.1]}]}),
    ({"pairs": [["good", "x"]]}, {"predictions": [{"label": "pos", "probabilities": [0.1, 0.9]}]}),
    ({"instances": ["good"]}, {"predictions": [{"label": "pos", "probabilities": [0.1, 0.9]}]}),
    ({"instances": [{"text": "a", "text_pair": "good"}]},
     {"predictions": [{"label": "pos", "probabilities": [0.1, 0.9]}]}),
    ({"instances": [["a", "b"]]}, {"predictions": [{"label": "neg", "probabilities": [0.9, 0.1]}]}),
    ({"inputs": ["good", "bad"]}, {"outputs": {"label": ["pos", "neg"], "probabilities": [[0.1, 0.9], [0.9, 0.1]]}}),
    ({"inputs": {"text": ["bad"]}}, {"outputs": {"label": ["neg"], "probabilities": [[0.9, 0.1]]}}),
])
def test_good_requests(client, body, expected):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert client.post("/v1/models/anything:predict", json=body).json() == expected  # TF Serving path


@pytest.mark.parametrize("content, headers, status, message", [
    (b"{not json", {"content-type": "application/json"}, 400, "not valid JSON"),
    (b"\xff\xfe", {"content-type": "application/json"}, 400, "not UTF-8"),
    (b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415, "application/json"),
    (b'{"texts": ["a"]}', {}, 415, "application/json"),
    (b'["a"]', {"content-type": "application/json"}, 422, "JSON object"),
    (b'{"text": ["a"]}', {"content-type": "application/json"}, 422, "expected one of"),
    (b'{"texts": "a"}', {"content-type": "application/json"}, 422, "must be a list"),
    (b'{"texts": []}', {"content-type": "application/json"}, 422, "is empty"),
    (b'{"texts": ["a", 3]}', {"content-type": "application/json"}, 422, "item 1 is not a string"),
    (b'{"texts": [null]}', {"content-type": "application/json"}, 422, "not a string"),
    (b'{"texts": ["a", ""]}', {"content-type": "application/json"}, 422, "input 1 is empty"),
    (b'{"texts": [" \\n\\t"]}', {"content-type": "application/json"}, 422, "only whitespace"),
    (b'{"texts": ["\\ud800"]}', {"content-type": "application/json"}, 422, "surrogate"),
    (b'{"texts": ["a", "b", "c", "d", "e"]}', {"content-type": "application/json"}, 413, "limit is 4"),
    (b'{"texts": ["' + b"x" * 51 + b'"]}', {"content-type": "application/json"}, 413, "51 characters"),
    (b'{"texts": ["' + b"x" * 3000 + b'"]}', {"content-type": "application/json"}, 413, "over 2000 bytes"),
    (b'{"pairs": [["a"]]}', {"content-type": "application/json"}, 422, "[text, text_pair]"),
    (b'{"questions": ["q"], "contexts": ["c"]}', {"content-type": "application/json"}, 422, "takes texts or pairs"),
    (b'{"questions": ["q"]}', {"content-type": "application/json"}, 422, "needs the fields"),
    (b'{"inputs": {"text": ["a"], "text_pair": ["b", "c"]}}', {"content-type": "application/json"}, 422,
     "same length"),
    (b'{"instances": ["a", ["b", "c"]]}', {"content-type": "application/json"}, 422, "item 1 is not a string"),
    (b'{"instances": [{"text": "a"}, {"question": "b"}]}', {"content-type": "application/json"}, 422,
     "same fields"),
    (b'{"instances": [3]}', {"content-type": "application/json"}, 422, "must be strings"),
])
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(client, content, headers, status, message):
    response = client.post("/v1/predict", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert client.post("/v1/predict", json={"texts": ["good"]}).status_code == 200


def test_wrong_method_and_path_are_json(client):
    assert client.get("/v1/predict").status_code == 405
    response = client.get("/nope")
    assert response.status_code == 404 and "error" in response.json()


def test_model_failure_is_500_and_the_server_keeps_serving(client):
    response = client.post("/v1/predict", json={"texts": ["boom"]})
    assert response.status_code == 500 and "model exploded" in response.json()["error"]
    assert client.post("/v1/predict", json={"texts": ["good"]}).json()["predictions"][0]["label"] == "pos"


def _submit_concurrently(batcher, requests):
    async def main():
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(kind, items) for kind, items in requests))
        finally:
            await batcher.stop()
    return asyncio.run(main())


def test_concurrent_requests_share_batches_and_get_their_own_results():
    model = FakePredictor(delay=0.02)
    batcher = DynamicBatcher(model.run, max_batch_size=8, max_wait_ms=20)
    requests = [("texts", [f"good {i}" if i % 3 == 0 else f"bad {i}"]) for i in range(20)]
    results = _submit_concurrently(batcher, requests)
    assert [r[0]["label"] for r in results] == ["pos" if i % 3 == 0 else "neg" for i in range(20)]
    assert sum(model.batches) == 20 and max(model.batches) == 8 and len(model.batches) <= 4
    assert batcher.stats["requests"] == 20 and batcher.stats["largest_batch"] == 8


def test_batches_keep_one_input_kind_and_the_size_limit():
    model = FakePredictor()
    batcher = DynamicBatcher(model.run, max_batch_size=4, max_wait_ms=20)
    requests = [("texts", ["a", "b", "c"]), ("pairs", [("good", "x")]), ("texts", ["d", "e"]), ("texts", ["good"])]
    results = _submit_concurrently(batcher, requests)
    assert [len(r) for r in results] == [3, 1, 2, 1] and results[1][0]["label"] == "pos"
    assert max(model.batches) <= 4


def test_no_batching_runs_one_request_at_a_time():
    model = FakePredictor()
    results = _submit_concurrently(DynamicBatcher(model.run, max_batch_size=1),
                                   [("texts", [str(i)]) for i in range(6)])
    assert len(results) == 6 and model.batches == [1] * 6


def test_full_queue_is_503():
    batcher = DynamicBatcher(FakePredictor(delay=0.05).run, max_batch_size=1, max_queue_items=2)

    async def main():
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit("texts", ["x"]) for _ in range(4)), return_exceptions=True)
        finally:
            await batcher.stop()

    outcomes = asyncio.run(main())
    refused = [o for o in outcomes if isinstance(o, RequestError)]
    assert refused and all(o.status == 503 for o in refused) and len(refused) < 4


class FakeEncoder(FakePredictor):
    """An encoder export without pooling: /v1/embed must refuse it before running the model."""

    kind, labels = "encoder", None
    metadata = {"kind": "encoder", "options": {"pooling": None, "normalize": False}}
    input_kinds = ("texts",)


def test_embed_refuses_an_encoder_without_pooling_before_running_it():
    predictor = FakeEncoder()
    with TestClient(create_app(predictor, warm_up=False)) as c:
        response = c.post("/v1/embed", json={"texts": ["a text"]})
    assert response.status_code == 422 and "exported without pooling" in response.json()["error"]
    assert predictor.batches == []


@pytest.mark.parametrize("body, message", [
    ({"questions": ["q"], "choices": [["a"]]}, "'choices' item 0 must be a list of at least 2 strings"),
    ({"questions": ["q", "r"], "choices": [["a", "b"]]},
     "'questions/choices': question and choices must have the same length"),
    ({"questions": ["q"], "choices": [["a", 3]]}, "'choices' item 0, position 1 is not a string (got int)"),
    ({"instances": [{"question": "q", "context": 5}]}, "'instances.context' item 0 is not a string (got int)"),
    ({"inputs": {"text": ["a"], "text_pair": "b"}}, "'inputs.text_pair' must be a list"),
    ({"pairs": [["a", 1]]}, "'pairs' must be a list of [text, text_pair] lists"),
    ({"instances": []}, "'instances' is empty"),
])
def test_schema_errors_name_the_field_as_the_body_does(body, message):
    from bertkit.serve.schema import parse_payload

    with pytest.raises(RequestError) as caught:
        parse_payload(body)
    assert caught.value.status == 422 and caught.value.message == message
