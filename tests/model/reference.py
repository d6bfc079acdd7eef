"""Real inputs and the HF transformers (PyTorch) reference used by the parity tests."""

import numpy as np

# Real sentences (SST-2 dev) and sentence pairs (MRPC dev), of mixed lengths.
SENTENCES = [
    "it 's a charming and often affecting journey . ",
    "unflinchingly bleak and desperate ",
    "allows us to hope that nolan is poised to embark a major career as a commercial yet inventive filmmaker . ",
    "the acting , costumes , music , cinematography and sound are all astounding given the production 's austere locales . ",
    "it 's slow -- very , very slow . ",
    "although laced with humor and a few fanciful touches , the film is a refreshingly serious look at young women . ",
    "a sometimes tedious film . ",
    "or doing last year 's taxes with your ex-wife . ",
    "you do n't have to know about music to appreciate the film 's easygoing blend of comedy and romance . ",
    "the mesmerizing performances of the leads keep the film grounded and keep the audience riveted . ",
]
PAIRS = [
    ("He said the foodservice pie business doesn't fit the company's long-term growth strategy.",
     "\"The foodservice pie business does not fit our long-term growth strategy."),
    ("Magnarelli said Racicot hated the Iraqi regime and looked forward to using his long years of training in the war.",
     "His wife said he was \"100 percent behind George Bush\" and looked forward to using his years of training in the war."),
    ("The dollar was at 116.92 yen against the yen , flat on the session, and at 1.2891 against the Swiss franc , also flat.",
     "The dollar was at 116.78 yen JPY= , virtually flat on the session, and at 1.2871 against the Swiss franc CHF= , down 0.1 percent."),
    ("The AFL-CIO is waiting until October to decide if it will endorse a candidate.",
     "The AFL-CIO announced Wednesday that it will decide in October whether to endorse a candidate before the primaries."),
    ("No dates have been set for the civil or the criminal trial.",
     "No dates have been set for the criminal or civil cases, but Shanley has pleaded not guilty."),
    ("Wal-Mart said it would check all of its million-plus domestic workers to ensure they were legally employed.",
     "It has also said it would review all of its domestic employees more than 1 million to ensure they have legal status."),
]


def hf_batch(model_dir: str) -> dict:
    """The 16 inputs tokenized by HF `tokenizers` (the independent reference), padded to the longest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_truncation()
    tok.no_padding()
    encs = [tok.encode(s) for s in SENTENCES] + [tok.encode(a, b) for a, b in PAIRS]
    longest = max(len(e.ids) for e in encs)
    batch = {k: np.zeros((len(encs), longest), np.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}
    for i, e in enumerate(encs):
        n = len(e.ids)
        batch["input_ids"][i, :n] = e.ids
        batch["token_type_ids"][i, :n] = e.type_ids
        batch["attention_mask"][i, :n] = 1
    return batch


def torch_inputs(batch: dict) -> dict:
    import torch

    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def max_diff_at_real_tokens(a, b, mask) -> float:
    """max |a - b| over positions where mask == 1; a, b [B, S, ...]."""
    keep = np.asarray(mask).astype(bool)
    return float(np.abs(np.asarray(a)[keep] - np.asarray(b)[keep]).max())
