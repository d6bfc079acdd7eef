"""`bertkit.FillMask` / `bertkit fill-mask` against transformers' fill-mask pipeline on the same weights.

The checkpoints are small random transformers models over the real uncased vocab (30,522 pieces)
with a spread-out output bias, so the top-k ranking has clear gaps; the texts are real SST-2
sentences with a word masked.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

TOP_K = 5


def _mlm_dir(out, minilm_path, cls_name):
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=128)
    model = getattr(transformers, cls_name)(config).eval()
    with torch.no_grad():  # a peaked, well-separated output distribution
        model.cls.predictions.bias.copy_(torch.randn(30522) * 3)
    model.save_pretrained(out)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(minilm_path, name)):
            shutil.copy(os.path.join(minilm_path, name), out)
    return str(out)


@pytest.fixture(scope="module")
def masked_texts(shared_data):
    rows = (shared_data / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:41]
    texts = []
    for i, row in enumerate(rows):
        words = row.split("\t")[0].split()
        k = (7 * i) % len(words)
        texts.append(" ".join(words[:k] + ["[MASK]"] + words[k + 1:]))
    texts += ["a [MASK] and a [MASK] walked into the [MASK] .", "[MASK]"]
    return texts


@pytest.mark.parametrize("cls_name", ["BertForMaskedLM", "BertForPreTraining"])
def test_fill_mask_equals_the_transformers_pipeline(tmp_path, minilm_path, masked_texts, cls_name):
    from transformers import pipeline

    from bertkit import FillMask

    path = _mlm_dir(tmp_path / cls_name, minilm_path, cls_name)
    reference = pipeline("fill-mask", model=path, device="cpu", top_k=TOP_K)
    fill = FillMask(path, top_k=TOP_K)
    ours = fill(masked_texts)  # length-sorted batches of 32, padded, with 0-3 masks per row
    assert len(ours) == len(masked_texts)
    alone = fill(masked_texts[-3:], batch_size=1)  # no padding, one text per pass

    def flat(rows):  # every candidate of every mask, in order
        return [c for row in rows for c in (row if isinstance(row[0], dict) else sum(row, []))]

    assert [c["token"] for c in flat(ours[-3:])] == [c["token"] for c in flat(alone)]
    np.testing.assert_allclose([c["score"] for c in flat(ours[-3:])], [c["score"] for c in flat(alone)], rtol=1e-5)
    for text, got in zip(masked_texts, ours):
        want = reference(text)
        if text.count("[MASK]") == 1:
            got, want = [got], [want]
        assert len(got) == len(want) == text.count("[MASK]")
        for got_mask, want_mask in zip(got, want):
            assert [c["token"] for c in got_mask] == [c["token"] for c in want_mask], text
            assert [c["token_str"] for c in got_mask] == [c["token_str"] for c in want_mask]
            assert [c["sequence"] for c in got_mask] == [c["sequence"] for c in want_mask]
            np.testing.assert_allclose([c["score"] for c in got_mask], [c["score"] for c in want_mask],
                                       rtol=1e-4, atol=1e-7)


def test_fill_mask_errors_name_the_model_and_the_text(tmp_path, minilm_path):
    from bertkit import FillMask

    with pytest.raises(ValueError, match=r"no masked-LM head \(cls\.predictions\.\* tensors\)"):
        FillMask(minilm_path)
    fill = FillMask(_mlm_dir(tmp_path / "mlm", minilm_path, "BertForMaskedLM"))
    with pytest.raises(ValueError, match=r"^text 2: no \[MASK\] token in it: 'no mask here'"):
        fill(["a [MASK] day", "no mask here"])
    with pytest.raises(ValueError, match=r"its \[MASK\] is beyond the model's 128 positions"):
        fill("word " * 200 + "[MASK]")
    with pytest.raises(ValueError, match="top_k"):
        FillMask(fill.path, top_k=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fill("a [MASK] day", batch_size=0)


def test_cli_writes_one_line_per_input_line(tmp_path, minilm_path):
    path = _mlm_dir(tmp_path / "mlm", minilm_path, "BertForMaskedLM")
    out = subprocess.run([sys.executable, "-m", "bertkit", "fill-mask", "--model", path, "--top-k", "3"],
                         input="the movie was [MASK] .\n\n[MASK] and [MASK]\n", capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 3 and lines[1] == []
    assert len(lines[0]) == 3 and lines[0][0]["sequence"].startswith("the movie was ")
    assert len(lines[2]) == 2 and all(len(mask) == 3 for mask in lines[2])
    bad = subprocess.run([sys.executable, "-m", "bertkit", "fill-mask", "--model", path, "no mask"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "bertkit fill-mask: error: text 1: no [MASK] token in it: 'no mask'"
