"""The real MiniLM (all-MiniLM-L6-v2) encoder: export -> fresh interpreter -> same sentence
embeddings as bertkit in Python (mean pooling + L2 norm, the sentence-transformers recipe)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import run_fresh


@pytest.mark.slow
def test_minilm_encoder_export_matches_python(minilm_path, real_inputs, tmp_path):
    from bertkit.export import export_model
    from bertkit.pretrained import load_pretrained
    from bertkit.tokenizer import load_tokenizer

    texts = real_inputs["texts"][:24]
    path = export_model(minilm_path, str(tmp_path / "minilm"), "encoder", max_length=128, normalize=True,
                        verify=False)
    got = run_fresh([{"name": "minilm", "path": path, "signature": "serving_default", "inputs": {"text": texts}}],
                    tmp_path)["results"]["minilm"]

    encodings = load_tokenizer(minilm_path).encode_batch(texts, max_length=128, padding="longest")
    mask = np.array([e.attention_mask for e in encodings], np.int32)
    outputs = load_pretrained(minilm_path)({"input_ids": np.array([e.ids for e in encodings], np.int32),
                                            "token_type_ids": np.array([e.type_ids for e in encodings], np.int32),
                                            "attention_mask": mask})
    sequence = outputs["sequence_output"].numpy()
    assert np.abs(np.array(got["sequence_output"]) - sequence)[mask.astype(bool)].max() <= 1e-4
    mean = (sequence * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    assert np.abs(np.array(got["sentence_embedding"]) - mean).max() <= 1e-5
    assert np.abs(np.array(got["pooled_output"]) - outputs["pooled_output"].numpy()).max() <= 1e-5
