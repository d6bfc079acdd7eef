"""Tiny random-init task models (real bert-base-uncased vocab), their exports, real inputs, and one
fresh-interpreter run of every export.

Tiny = hidden 32, 2 layers, 4 heads, intermediate 37 (as google-research / HF tests). The
initializer range is 0.2 instead of 0.02 so that logits are spread out: with near-equal logits a
1e-7 rounding difference could flip an argmax and make a label / span comparison flaky.
Options are chosen small (classify max_length 32, ner 24, qa 96 with stride 32) so that
truncation and windows over long inputs are exercised by ordinary sentences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import SHARED_DATA

VOCAB = SHARED_DATA / "vocab" / "bert-base-uncased"
FRESH_LOAD = Path(__file__).with_name("fresh_load.py")
NER_LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
TASK_OPTIONS = {
    "classify": {"max_length": 32},
    "ner": {"max_length": 24},
    "qa": {"max_length": 96, "doc_stride": 32, "max_query_length": 24, "max_answer_length": 12, "n_best_size": 10},
}


def make_tiny_model(task: str, out_dir, labels=None, options=None, seed: int = 0) -> str:
    import keras

    from bertkit.config import BertConfig
    from bertkit.model.models import build_task_model
    from bertkit.pretrained import save_model

    keras.utils.set_random_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, initializer_range=0.2)
    model = build_task_model(task, config, num_labels=len(labels) if labels else 2)
    extra = {"bertkit_task_options": options} if options else None
    save_model(model, str(out_dir), tokenizer_dir=str(VOCAB), labels=labels, extra_config=extra)
    return str(out_dir)


@pytest.fixture(scope="session")
def real_inputs(shared_data) -> dict:
    """Real sentences, pairs, NER lines and SQuAD questions from ../shared/data."""
    from bertkit.data.classification import GLUE_COLUMNS, read_classification_file
    from bertkit.data.ner import read_conll
    from bertkit.data.squad import read_squad

    sst2 = read_classification_file(shared_data / "sst2" / "dev.tsv", **GLUE_COLUMNS["sst2"])[:40]
    agnews = read_classification_file(shared_data / "agnews" / "dev.tsv", header=False)[:8]
    mrpc = read_classification_file(shared_data / "mrpc" / "dev.tsv", **GLUE_COLUMNS["mrpc"])[:32]
    conll = read_conll(shared_data / "conll2003" / "eng.testa")[:40]
    wnut = read_conll(shared_data / "wnut17" / "emerging.dev.conll")[:24]
    squad = read_squad(shared_data / "squad" / "dev-v1.1.articles00-37.json", articles=[0, 7, 21])
    squad = squad[:16] + squad[-16:]
    return {"texts": [e.text for e in sst2 + agnews],
            "pairs": [(e.text, e.text_pair) for e in mrpc],
            "ner": [" ".join(e.words) for e in conll + wnut],
            "questions": [e.question for e in squad], "contexts": [e.context for e in squad]}


# tests/serve reuses these session fixtures (importing them into its conftest would define them a
# second time, and build everything twice): the builders memoise their results per session.
_BUILT: dict = {}


def _once(key, build):
    if key not in _BUILT:
        _BUILT[key] = build()
    return _BUILT[key]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, shared_data) -> dict:
    if not VOCAB.exists():
        pytest.fail(f"{VOCAB} is not present", pytrace=False)
    return _once("tiny_models", lambda: _make_tiny_models(tmp_path_factory.mktemp("models")))


def _make_tiny_models(root) -> dict:
    return {"classify": make_tiny_model("classify", root / "classify", ["neg", "pos"], TASK_OPTIONS["classify"]),
            "ner": make_tiny_model("ner", root / "ner", NER_LABELS, TASK_OPTIONS["ner"], seed=2),
            "qa": make_tiny_model("qa", root / "qa", None, TASK_OPTIONS["qa"], seed=3)}


@pytest.fixture(scope="session")
def exports(tiny_models, tmp_path_factory) -> dict:
    """Every tiny model exported (EXPORT_DIR/1), plus the classifier's encoder and preprocessor.

    Only the classifier is verified in-process on export (verify reloads the SavedModel, a few
    seconds each); the fresh-interpreter parity tests check all of them more strictly anyway.
    """
    return _once("exports", lambda: _export_all(tiny_models, tmp_path_factory.mktemp("exports")))


def _export_all(tiny_models, root) -> dict:
    from bertkit.export import export_model

    paths = {name: export_model(path, str(root / name), verify=name == "classify")
             for name, path in tiny_models.items()}
    paths["encoder"] = export_model(tiny_models["classify"], str(root / "encoder"), "encoder", max_length=64,
                                    normalize=True, verify=False)
    paths["preprocessor"] = export_model(tiny_models["classify"], str(root / "preprocessor"), "preprocessor",
                                         max_length=48, verify=False)
    return paths


def run_fresh(jobs: list[dict], tmp_dir) -> dict:
    """Runs `jobs` through fresh_load.py in a new interpreter (cwd outside the repo)."""
    jobs_file, out_file = Path(tmp_dir) / "jobs.json", Path(tmp_dir) / "out.json"
    jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(FRESH_LOAD), str(jobs_file), str(out_file)], cwd=tmp_dir,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out_file.read_text(encoding="utf-8"))


def token_ids(model_dir: str, texts: list[str], max_length: int) -> dict:
    from bertkit.tokenizer import load_tokenizer

    encodings = load_tokenizer(model_dir).encode_batch(texts, max_length=max_length, padding="longest")
    return {"input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings]}


@pytest.fixture(scope="session")
def fresh(tiny_models, exports, real_inputs, tmp_path_factory) -> dict:
    """All parity inputs through all exports, in ONE fresh interpreter (TF start-up is the cost)."""
    texts, pairs = real_inputs["texts"], real_inputs["pairs"]
    jobs = [
        {"name": "classify", "path": exports["classify"], "signature": "serving_default", "inputs": {"text": texts}},
        {"name": "pair", "path": exports["classify"], "signature": "text_pair",
         "inputs": {"text": [a for a, _ in pairs], "text_pair": [b for _, b in pairs]}},
        {"name": "classify_ids", "path": exports["classify"], "signature": "token_ids", "inputs": token_ids(
            tiny_models["classify"], texts, TASK_OPTIONS["classify"]["max_length"])},
        {"name": "ner", "path": exports["ner"], "signature": "serving_default", "inputs": {"text": real_inputs["ner"]}},
        {"name": "qa", "path": exports["qa"], "signature": "serving_default",
         "inputs": {"question": real_inputs["questions"], "context": real_inputs["contexts"]}},
        {"name": "encoder", "path": exports["encoder"], "signature": "serving_default", "inputs": {"text": texts}},
        {"name": "preprocessor", "path": exports["preprocessor"], "signature": "serving_default",
         "inputs": {"text": texts}},
        {"name": "preprocessor_pair", "path": exports["preprocessor"], "signature": "text_pair",
         "inputs": {"text": [a for a, _ in pairs], "text_pair": [b for _, b in pairs]}},
    ]
    return run_fresh(jobs, tmp_path_factory.mktemp("fresh"))
