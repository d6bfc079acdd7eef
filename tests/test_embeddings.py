"""Sentence embeddings equal sentence-transformers' on the real all-MiniLM-L6-v2, for every pooling
mode and both runtimes; `bertkit embed` writes one row per input line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bertkit.embeddings import Embedder, read_pooling_config

st = pytest.importorskip("sentence_transformers")
BERTKIT = str(Path(sys.executable).with_name("bertkit"))  # the console script of this environment


@pytest.fixture(scope="module")
def sentences(shared_data) -> list[str]:
    """220 real texts of mixed length: SST-2 phrases, AG News items, and pairs of consecutive SQuAD
    paragraphs (most of these run past the model's max_seq_length of 256 pieces: truncated)."""
    sst = [row.split("\t")[0] for row in (shared_data / "sst2" / "dev.tsv").read_text().splitlines()[1:101]]
    news = [row.split("\t")[0] for row in (shared_data / "agnews" / "dev.tsv").read_text().splitlines()[1:81]]
    squad = json.loads((shared_data / "squad" / "dev-v1.1.articles00-37.json").read_text())
    paragraphs = [p["context"] for a in squad["data"][:10] for p in a["paragraphs"][:9]]
    return sst + news + [" ".join(paragraphs[i:i + 2]) for i in range(0, 80, 2)]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_reads_the_sentence_transformers_folder(minilm_path):
    config = read_pooling_config(minilm_path)
    assert (config.mode, config.normalize, config.max_seq_length) == ("mean", True, 256)


@pytest.mark.parametrize("runtime", ["tflite", "tensorflow"])
def test_matches_sentence_transformers(minilm_path, sentences, runtime):
    reference = st.SentenceTransformer(minilm_path, device="cpu")
    want = reference.encode(sentences, batch_size=32)
    truncated = sum(len(reference.tokenizer(s)["input_ids"]) > 256 for s in sentences)
    assert len(sentences) >= 200 and truncated >= 15
    got = Embedder(minilm_path, runtime=runtime).encode(sentences)
    assert got.shape == want.shape == (len(sentences), 384) and got.dtype == np.float32
    assert cosines(got, want).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len"])
def test_other_pooling_modes_match(minilm_path, sentences, tmp_path, mode):
    """A copy of the folder with another pooling mode and no Normalize module, read by both."""
    folder = tmp_path / "model"
    shutil.copytree(minilm_path, folder)
    config = json.loads((folder / "1_Pooling" / "config.json").read_text())
    config.update({k: False for k in config if k.startswith("pooling_mode_")})
    config[{"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
            "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}[mode]] = True
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    texts = sentences[::5]
    want = st.SentenceTransformer(str(folder), device="cpu").encode(texts)
    got = Embedder(str(folder)).encode(texts)
    assert cosines(got, want).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1), rtol=1e-4)


@pytest.fixture(scope="module")
def dense_folder(minilm_path, tmp_path_factory):
    """all-MiniLM-L6-v2 with two Dense modules between its pooling and its Normalize, saved by
    sentence-transformers: 384 -> 128 tanh, then 128 -> 96 GELU with a projected residual (LaBSE has
    one 768 -> 768 tanh Dense)."""
    import torch
    from sentence_transformers.models import Dense, Normalize

    torch.manual_seed(0)
    base = st.SentenceTransformer(minilm_path, device="cpu")
    model = st.SentenceTransformer(modules=[base[0], base[1], Dense(384, 128),
                                            Dense(128, 96, activation_function=torch.nn.GELU(), use_residual=True),
                                            Normalize()], device="cpu")
    folder = tmp_path_factory.mktemp("dense") / "model"
    model.save(str(folder))
    return folder


@pytest.mark.parametrize("runtime", ["tflite", "tensorflow"])
def test_dense_modules_match_sentence_transformers(dense_folder, sentences, runtime):
    config = read_pooling_config(str(dense_folder))
    assert [(d.in_features, d.out_features, d.use_residual) for d in config.dense] == [(384, 128, False),
                                                                                       (128, 96, True)]
    texts = sentences[::4]
    want = st.SentenceTransformer(str(dense_folder), device="cpu").encode(texts)
    embedder = Embedder(str(dense_folder), runtime=runtime)
    got = embedder.encode(texts)
    assert embedder.dimension == 96 and got.shape == want.shape == (len(texts), 96)
    assert cosines(got, want).min() >= 0.99999
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_unsupported_modules_and_bad_configs_are_refused(minilm_path, dense_folder, tmp_path):
    folder = tmp_path / "other"
    shutil.copytree(minilm_path, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_LayerNorm", "type": "sentence_transformers.models.LayerNorm"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"modules.json: module 'sentence_transformers.models.LayerNorm' "
                                         r"\(3_LayerNorm\) is not supported"):
        read_pooling_config(str(folder))
    (folder / "modules.json").write_text(json.dumps(modules[:3]))
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}))
    with pytest.raises(ValueError, match="1_Pooling/config.json: bertkit needs exactly one of"):
        read_pooling_config(str(folder))

    # Dense modules: in order, a known activation, weights in safetensors of the configured shape
    folder = tmp_path / "dense"
    shutil.copytree(dense_folder, folder)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([modules[0], modules[4], modules[2]]))
    with pytest.raises(ValueError, match="module Dense .* comes after Normalize"):
        read_pooling_config(str(folder))
    (folder / "modules.json").write_text(json.dumps(modules))
    dense_config = folder / modules[2]["path"] / "config.json"
    config = json.loads(dense_config.read_text())
    dense_config.write_text(json.dumps({**config, "activation_function": "torch.nn.modules.activation.Softsign"}))
    with pytest.raises(ValueError, match="activation_function 'torch.nn.modules.activation.Softsign' is not supported"):
        read_pooling_config(str(folder))
    dense_config.write_text(json.dumps({**config, "out_features": 64}))
    with pytest.raises(ValueError, match=r"model.safetensors: linear.weight should have shape \(64, 384\)"):
        Embedder(str(folder), runtime="tensorflow")
    dense_config.write_text(json.dumps(config))
    (folder / modules[2]["path"] / "model.safetensors").rename(folder / modules[2]["path"] / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="Dense module's weights are missing .*never unpickles"):
        Embedder(str(folder))


def test_embed_command_writes_one_row_per_line(minilm_path, sentences, tmp_path):
    lines = sentences[:30] + ["", "   "] + sentences[30:40]
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    npy, jsonl = tmp_path / "out.npy", tmp_path / "out.jsonl"
    for out in (npy, jsonl):
        run = subprocess.run([BERTKIT, "embed", "--model", minilm_path, str(source),
                              "--output", str(out)], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
    matrix = np.load(npy)
    rows = np.array([json.loads(line)["embedding"] for line in jsonl.read_text().splitlines()], np.float32)
    assert matrix.shape == rows.shape == (len(lines), 384)
    np.testing.assert_allclose(rows, matrix, atol=1e-6)
    want = st.SentenceTransformer(minilm_path, device="cpu").encode(lines)  # blank lines embed the empty text
    assert cosines(matrix, want).min() >= 0.99999
    bad = subprocess.run([BERTKIT, "embed", "--model", minilm_path, str(source),
                          "--output", str(tmp_path / "out.csv")], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "must end in .npy or .jsonl" in bad.stderr


def test_semantic_search_matches_sentence_transformers(minilm_path, sentences, monkeypatch):
    import torch

    import bertkit.embeddings as embeddings

    monkeypatch.setattr(embeddings, "SEARCH_CHUNK_ROWS", 16)  # many chunks: the running top-k is exercised
    embedder = Embedder(minilm_path)
    corpus, queries = embedder.encode(sentences), embedder.encode(sentences[3:200:20])
    got = embeddings.semantic_search(queries, corpus, top_k=7)
    want = st.util.semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=7)
    for ours, theirs in zip(got, want):
        assert [i for i, _ in ours] == [h["corpus_id"] for h in theirs]
        np.testing.assert_allclose([s for _, s in ours], [h["score"] for h in theirs], atol=1e-5)
    assert [hits[0][0] for hits in got] == list(range(3, 200, 20))  # each query finds itself first


def test_search_command_reuses_its_index(minilm_path, sentences, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sentences[:60]) + "\n", encoding="utf-8")
    index = tmp_path / "corpus.npz"
    command = [BERTKIT, "search", "--model", minilm_path, "--corpus", str(corpus), "--index", str(index),
               "--query", sentences[10], "--query", "a film about love", "--top-k", "3"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    results = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["query"] for r in results] == [sentences[10], "a film about love"]
    assert results[0]["results"][0] == {"line": 11, "text": sentences[10], "score": pytest.approx(1.0, abs=1e-5)}
    made = index.stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.stdout == first.stdout and index.stat().st_mtime_ns == made  # reused, not rebuilt
    corpus.write_text("\n".join(sentences[60:120]) + "\n", encoding="utf-8")
    changed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert changed.returncode == 0 and "made from another corpus or model" in changed.stderr
    assert json.loads(changed.stdout.splitlines()[0])["results"][0]["text"] in sentences[60:120]


@pytest.mark.parametrize("mode", ["folder", "cls", "dense"])
def test_encoder_export_follows_the_folder_in_a_fresh_process(minilm_path, dense_folder, sentences, tmp_path, mode):
    """`bertkit export --kind encoder` with the default pooling ("auto") reads the sentence-transformers
    files (mean + Normalize + max_seq_length 256 here; a copy set to cls pooling without Normalize;
    one with two Dense modules); the SavedModel, run where bertkit is not imported, gives
    sentence-transformers' embeddings."""
    from tests.export.conftest import run_fresh

    folder = dense_folder if mode == "dense" else minilm_path
    if mode == "cls":
        folder = tmp_path / "model"
        shutil.copytree(minilm_path, folder)
        config = json.loads((folder / "1_Pooling" / "config.json").read_text())
        config.update({k: k == "pooling_mode_cls_token" for k in config if k.startswith("pooling_mode_")})
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
        modules = json.loads((folder / "modules.json").read_text())
        (folder / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    out = tmp_path / "export"
    subprocess.run([BERTKIT, "export", "--model", str(folder), "--kind", "encoder", "--out", str(out),
                    "--no-verify"], check=True, capture_output=True)
    version = next(out.iterdir())
    metadata = json.loads((version / "assets.extra" / "bertkit_export.json").read_text())
    assert metadata["options"]["pooling"] == ("cls" if mode == "cls" else "mean")
    assert metadata["options"].get("dense") == ([[384, 128, "torch.nn.modules.activation.Tanh"],
                                                 [128, 96, "torch.nn.modules.activation.GELU"]]
                                                if mode == "dense" else None)
    assert metadata["options"]["normalize"] == (mode != "cls") and metadata["options"]["max_length"] == 256
    width = 96 if mode == "dense" else 384
    texts = sentences if mode == "folder" else sentences[::4]
    # Length-sorted calls of 32 texts, as a server's batches would be (one call of all 220 would pad
    # every short text to 256 pieces and cost 5x the time); rows are put back in input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = [order[i:i + 32] for i in range(0, len(order), 32)]
    results = run_fresh([{"name": f"st{k}", "path": str(version), "signature": "serving_default",
                          "inputs": {"text": [texts[i] for i in chunk]}} for k, chunk in enumerate(chunks)],
                        tmp_path)["results"]
    got = np.zeros((len(texts), width), np.float32)
    for k, chunk in enumerate(chunks):
        got[chunk] = np.array(results[f"st{k}"]["sentence_embedding"], dtype=np.float32)
    want = st.SentenceTransformer(str(folder), device="cpu").encode(texts)
    assert cosines(got, want).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1), rtol=1e-4)


def test_int8_embeddings_stay_close_to_sentence_transformers(minilm_path, sentences):
    """Dynamic-range int8 weights on the real MiniLM against sentence-transformers' fp32."""
    want = st.SentenceTransformer(minilm_path, device="cpu").encode(sentences, batch_size=32)
    got = Embedder(minilm_path, precision="int8").encode(sentences)
    assert got.shape == want.shape and got.dtype == np.float32
    close = cosines(got, want)
    assert close.min() >= 0.98 and np.median(close) >= 0.995, (close.min(), np.median(close))
    with pytest.raises(ValueError, match="runs on the TFLite runtime"):
        Embedder(minilm_path, runtime="tensorflow", precision="int8")


def test_serving_a_sentence_transformers_folder_embeds_as_it_does(dense_folder, sentences):
    """`bertkit serve --model FOLDER` on a sentence-transformers folder (here with Dense modules):
    /v1/embed answers with sentence-transformers' vectors."""
    from fastapi.testclient import TestClient

    from bertkit.export.runtime import Predictor
    from bertkit.serve import create_app

    texts = sentences[:6] + sentences[-2:]
    with TestClient(create_app(Predictor.load(str(dense_folder)), warm_up=False)) as client:
        reply = client.post("/v1/embed", json={"texts": texts})
    assert reply.status_code == 200, reply.text
    got = np.array(reply.json()["embeddings"], np.float32)
    want = st.SentenceTransformer(str(dense_folder), device="cpu").encode(texts)
    assert got.shape == (8, 96) and cosines(got, want).min() >= 0.99999


def test_embedding_in_chunks_and_the_pooling_flags(minilm_path, sentences, tmp_path):
    """Chunks of lines (`iter_encode`) give the rows one call gives; `embed --pooling/--normalize`
    override the folder's settings as sentence-transformers would compute them."""
    embedder = Embedder(minilm_path, runtime="tensorflow")
    texts = sentences[:23]
    whole = embedder.encode(texts)
    chunked = np.concatenate(list(embedder.iter_encode(iter(texts), chunk_lines=5)))
    np.testing.assert_allclose(chunked, whole, atol=1e-6)

    from bertkit.cli import main

    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "cls.npy"
    assert main(["embed", "--model", minilm_path, str(source), "--output", str(out), "--pooling", "cls",
                 "--no-normalize", "--runtime", "tensorflow", "--no-progress"]) == 0
    reference = st.SentenceTransformer(minilm_path, device="cpu")
    tokens = reference.encode(texts, output_value="token_embeddings")
    want = np.stack([t[0].numpy() for t in tokens])  # the [CLS] vector, not normalised
    np.testing.assert_allclose(np.load(out), want, atol=2e-5)
