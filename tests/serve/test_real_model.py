"""The server over real (tiny) exports: same results as `bertkit predict`; one real uvicorn."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from bertkit.export.runtime import Predictor
from bertkit.serve import ServeOptions, create_app
from bertkit.tasks import TASKS, predict


@pytest.mark.parametrize("task", ["classify", pytest.param("ner", marks=pytest.mark.slow),
                                  pytest.param("qa", marks=pytest.mark.slow)])
def test_served_export_matches_bertkit_predict(task, exports, tiny_models, real_inputs):
    if task == "qa":
        lines = [f"{q}\t{c}" for q, c in zip(real_inputs["questions"][:6], real_inputs["contexts"][:6])]
        body = {"questions": real_inputs["questions"][:6], "contexts": real_inputs["contexts"][:6]}
    else:
        lines = real_inputs["texts" if task == "classify" else "ner"][:12]
        body = {"texts": lines}
    with TestClient(create_app(Predictor.load(os.path.dirname(exports[task])), ServeOptions(max_wait_ms=1))) as client:
        got = client.post("/v1/predict", json=body).json()["predictions"]
        assert client.get("/v1/model").json()["task"] == task
    want = predict(tiny_models[task], lines, TASKS)
    if task == "classify":
        assert [g["label"] for g in got] == [w["label"] for w in want]
        diffs = [abs(a - b) for g, w in zip(got, want) for a, b in zip(g["probabilities"], w["probabilities"])]
        assert max(diffs) <= 2e-6
    elif task == "ner":
        assert got == want
    else:  # QA: spans; predict() differs only where padding logits take n-best slots (see export/qa.py)
        assert sum(g["answer"] == w["answer"] for g, w in zip(got, want)) >= len(want) - 1


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_model_directory_is_served_through_the_engine(task, tiny_models, exports, real_inputs):
    """A model directory runs on the TFLite runtime with `bertkit predict`'s answers, in the
    records its export serves (QA with the answer's probability too)."""
    if task == "qa":
        body = {"questions": real_inputs["questions"][:6], "contexts": real_inputs["contexts"][:6]}
        lines = [f"{q}\t{c}" for q, c in zip(body["questions"], body["contexts"])]
    elif task == "ner":
        body = {"texts": real_inputs["ner"][:12]}
        lines = body["texts"]
    else:
        body = {"pairs": [list(p) for p in real_inputs["pairs"][:8]]}
        lines = [f"{a}\t{b}" for a, b in real_inputs["pairs"][:8]]
    engine = Predictor.load(tiny_models[task])
    assert engine.metadata["runtime"] == "tflite" and engine.kind == task
    with TestClient(create_app(engine, ServeOptions(max_wait_ms=1))) as client:
        got = client.post("/v1/predict", json=body).json()["predictions"]
        info = client.get("/v1/model").json()
    assert info["task"] == task and info["max_length"] == engine.max_length
    want = predict(tiny_models[task], lines, TASKS)
    with TestClient(create_app(Predictor.load(os.path.dirname(exports[task])), ServeOptions(max_wait_ms=1))) as client:
        exported = client.post("/v1/predict", json=body).json()["predictions"]
    if task == "qa":
        assert [{k: v for k, v in g.items() if k != "probability"} for g in got] == want
        assert sum(g["answer"] == e["answer"] for g, e in zip(got, exported)) >= len(got) - 1  # see export/qa.py
        assert all(0.0 < g["probability"] <= 1.0 for g in got if g["answer"])
    else:
        assert got == want
        assert [sorted(g) for g in got] == [sorted(e) for e in exported]  # the export's record layout
    if task == "classify":  # a TAB inside a served text is part of the text, as the export reads it
        texts = ["a good\tfilm", "dull"]
        assert [g["label"] for g in engine.run("texts", texts)] == \
            [g["label"] for g in Predictor.load(tiny_models[task], runtime="tensorflow").run("texts", texts)]


def test_int8_serves_a_model_directory_only(tiny_models, exports, real_inputs):
    """`bertkit serve --precision int8`: the engine on int8 weights, with `predict --precision
    int8`'s answers; an export (a SavedModel) is refused rather than served in fp32."""
    engine = Predictor.load(tiny_models["classify"], precision="int8")
    assert (engine.metadata["runtime"], engine.metadata["precision"]) == ("tflite", "int8")
    pairs = real_inputs["pairs"][:8]
    want = predict(tiny_models["classify"], [f"{a}\t{b}" for a, b in pairs], TASKS, precision="int8")
    assert engine.run("pairs", pairs) == want
    with pytest.raises(ValueError, match="--precision int8 runs a fine-tuned task model directory"):
        Predictor.load(os.path.dirname(exports["classify"]), precision="int8")


def test_preprocessor_export_is_not_servable(exports):
    with pytest.raises(ValueError, match="no predictions to serve"):
        Predictor.load(exports["preprocessor"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bertkit_serve_on_loopback(exports, real_inputs):
    """`bertkit serve` in its own process (real uvicorn), concurrent good and bad clients."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bertkit", "serve", "--model", os.path.dirname(exports["classify"]),
                             "--port", str(port), "--max-batch-size", "8", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 900  # a guard against a server that never starts, not a speed check
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "server did not come up"
            time.sleep(0.3)
        texts = real_inputs["texts"][:32]

        def call(i):
            if i % 4 == 3:
                return httpx.post(f"{base}/v1/predict", content=b"{oops", timeout=60,
                                  headers={"content-type": "application/json"}).status_code
            r = httpx.post(f"{base}/v1/predict", json={"texts": [texts[i]]}, timeout=60)
            return r.json()["predictions"][0]["label"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, range(32)))
        assert [r for i, r in enumerate(results) if i % 4 == 3] == [400] * 8
        assert all(r in ("neg", "pos") for i, r in enumerate(results) if i % 4 != 3)
        batching = httpx.get(f"{base}/v1/model").json()["batching"]
        assert batching["requests"] == 24  # bad requests never reach the queue
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_embed_endpoint_serves_an_encoder_export(exports, real_inputs):
    import numpy as np
    import tensorflow as tf

    texts = real_inputs["texts"][:5]
    with TestClient(create_app(Predictor.load(exports["encoder"]), ServeOptions(max_wait_ms=1))) as client:
        got = client.post("/v1/embed", json={"texts": texts}).json()["embeddings"]
        pairs = client.post("/v1/embed", json={"pairs": [["a", "b"]]})
    with TestClient(create_app(Predictor.load(exports["classify"]))) as client:
        wrong = client.post("/v1/embed", json={"texts": ["a"]})
    want = tf.saved_model.load(exports["encoder"]).signatures["text"](text=tf.constant(texts))["sentence_embedding"]
    np.testing.assert_allclose(np.array(got), want.numpy(), atol=1e-6)
    assert pairs.status_code == 422 and "takes texts" in pairs.json()["error"]
    assert wrong.status_code == 422 and "/v1/embed serves encoder exports" in wrong.json()["error"]
