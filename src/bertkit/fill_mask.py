"""Fill-mask: the masked-LM head's most likely word pieces for each [MASK] in a text.

Follows transformers' `pipeline("fill-mask")` (its output keys and order, its `sequence` and
`token_str` decoding): for a text with one [MASK] a list of the top-k candidates
`{"score", "token", "token_str", "sequence"}`, best first; with several [MASK]s one such list per
mask, each scored independently (the masks are not filled jointly), and `sequence` keeps the special
tokens so the other masks stay visible, as transformers does.

The model needs a masked-LM head: a bertkit pretraining output, or a Hugging Face BertForMaskedLM /
BertForPreTraining or Google checkpoint (their `cls.predictions.*` tensors). The NSP head and the
pooler, when present, are not used.
"""

from __future__ import annotations

import numpy as np

from .convert.names import MASKED_LM, MLM_HEAD_PREFIX
from .data.common import INFERENCE_BATCH_SIZE

DEFAULT_TOP_K = 5


class FillMask:
    """Top-k word pieces for the [MASK] tokens of texts.

    Args:
      model: a model directory or a Hugging Face Hub name (see `bertkit.hub`) with a masked-LM head.
      revision: branch, tag or commit of a Hub repo.
      top_k: candidates per mask (default 5), best first.

    Raises:
      ValueError: the checkpoint has no masked-LM head (an encoder-only or fine-tuned model).
      FileNotFoundError / bertkit.hub.HubError: no such model.

    Example:
      >>> fill = bertkit.FillMask("google-bert/bert-base-uncased")  # doctest: +SKIP
      >>> [c["token_str"] for c in fill("the man went to the [MASK] to deposit money.")][:2]  # doctest: +SKIP
      ['bank', 'store']
    """

    def __init__(self, model: str, revision: str | None = None, top_k: int = DEFAULT_TOP_K):
        from .hub import resolve_model_path
        from .pretrained import read_config, read_tensors
        from .tokenizer import load_tokenizer

        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        self.path = resolve_model_path(model, revision)
        self.config = read_config(self.path)[0]
        tensors = read_tensors(self.path, self.config)
        if not any(name.startswith(MLM_HEAD_PREFIX) for name in tensors):
            raise ValueError(f"{self.path}: no masked-LM head ({MLM_HEAD_PREFIX}* tensors), so it cannot fill "
                             "masks; use a model pretrained with MLM (`bertkit pretrain`, or a BertForMaskedLM / "
                             "BertForPreTraining checkpoint)")
        self.tokenizer = load_tokenizer(self.path)
        self.top_k = top_k
        self.model = _build(self.config, tensors)

    def __call__(self, texts: str | list[str], top_k: int | None = None, names: list[str] | None = None,
                 batch_size: int = INFERENCE_BATCH_SIZE) -> list:
        """Candidates for one text (a list, or a list per mask) or for each of a list of texts.

        Texts run in batches of `batch_size` of similar length (sorted, padded to the batch's
        longest); the answers come back in the texts' order.

        Raises ValueError naming the text ("text N", 1-based, or its entry in `names`, e.g.
        "file:line") that has no [MASK] or whose masks fall beyond max_position_embeddings; the
        texts are all checked before any is run."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        names = names or [f"text {i}" for i in range(1, len(texts) + 1)]
        encodings = [self._encode(text, name) for text, name in zip(texts, names)]
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        rows = [None] * len(encodings)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            batch = [np.asarray(encodings[i].ids, np.int32) for i in index]
            for i, ids, logits in zip(index, batch, self._mask_logits(batch)):
                rows[i] = self._candidates(ids, logits, top_k or self.top_k)
        return rows[0] if single else rows

    def _encode(self, text: str, name: str):
        mask, limit = self.tokenizer.mask_id, self.config.max_position_embeddings
        enc = self.tokenizer.encode(text, max_length=limit)
        if mask not in enc.ids:
            token = self.tokenizer.special_tokens["mask_token"]
            reason = (f"its {token} is beyond the model's {limit} positions"
                      if mask in self.tokenizer.encode(text).ids else f"no {token} token in it")
            raise ValueError(f"{name}: {reason}: {text[:80]!r}")
        return enc

    def _mask_logits(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """One forward pass over texts' ids (padded to the longest): float64 [masks_i, vocab] each."""
        width = max(len(ids) for ids in batch)
        positions = [np.flatnonzero(ids == self.tokenizer.mask_id) for ids in batch]
        most = max(len(p) for p in positions)
        input_ids = np.full((len(batch), width), self.tokenizer.pad_id, np.int32)  # masked out below
        attention_mask = np.zeros((len(batch), width), np.int32)
        mask_positions = np.zeros((len(batch), most), np.int32)  # extra slots read position 0, unused
        for row, (ids, where) in enumerate(zip(batch, positions)):
            input_ids[row, :len(ids)] = ids
            attention_mask[row, :len(ids)] = 1
            mask_positions[row, :len(where)] = where
        logits = self.model({"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
                             "attention_mask": attention_mask, "masked_lm_positions": mask_positions})
        logits = np.asarray(logits["mlm_logits"], np.float64)  # [batch, most, vocab]
        return [logits[row, :len(where)] for row, where in enumerate(positions)]

    def _candidates(self, ids: np.ndarray, logits: np.ndarray, top_k: int) -> list:
        positions = np.flatnonzero(ids == self.tokenizer.mask_id)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        single = len(positions) == 1
        rows = []
        for position, p in zip(positions, probs):
            best = np.argsort(-p, kind="stable")[:top_k]
            row = []
            for token in best:
                filled = ids.copy()
                filled[position] = token
                row.append({"score": float(p[token]), "token": int(token),
                            "token_str": self.tokenizer.decode([int(token)], skip_special_tokens=False),
                            "sequence": self.tokenizer.decode(filled, skip_special_tokens=single)})
            rows.append(row)
        return rows[0] if single else rows


def _build(config, tensors):
    """BertPretrainer's encoder + MLM head filled from `tensors` (HF names); its NSP head is built,
    neither loaded nor used, and the pooler's and NSP's tensors are skipped on purpose."""
    from .tf_start import quiet_tensorflow_start

    quiet_tensorflow_start()
    from .convert.checkpoint import assign_weights
    from .model.models import BertPretrainer

    model = BertPretrainer(config)
    model.build()
    assign_weights(model, config, MASKED_LM, tensors, skip_prefixes=("pooler.", "cls.seq_relationship."))
    return model
