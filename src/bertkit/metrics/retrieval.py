"""Retrieval metrics of paired texts: each query's own partner ranked among all partners, by cosine.

As sentence-transformers' InformationRetrievalEvaluator with one relevant document per query:
accuracy@1 (its partner ranks first) and MRR@10 (1 / rank when the rank is at most 10, else 0).
"""

from __future__ import annotations

import numpy as np

RETRIEVAL_CHUNK_ROWS = 4096  # queries scored at once: memory stays [chunk, N]


def pair_retrieval_metrics(queries: np.ndarray, documents: np.ndarray) -> dict[str, float]:
    """{"accuracy@1", "mrr@10"} where row i of `documents` [N, H] is the one relevant document of
    query row i [N, H]. A tie with the partner counts in the partner's favour (rank = 1 + the
    documents scored strictly higher)."""
    from ..embeddings import cosine_scores

    if len(queries) != len(documents):
        raise ValueError(f"{len(queries)} queries but {len(documents)} documents")
    if not len(queries):
        return {"accuracy@1": 0.0, "mrr@10": 0.0}
    ranks = []
    for start in range(0, len(queries), RETRIEVAL_CHUNK_ROWS):
        scores = cosine_scores(queries[start:start + RETRIEVAL_CHUNK_ROWS], documents)  # [chunk, N]
        own = scores[np.arange(len(scores)), np.arange(start, start + len(scores))]
        ranks.append(1 + (scores > own[:, None]).sum(axis=1))
    rank = np.concatenate(ranks)
    return {"accuracy@1": float(np.mean(rank == 1)), "mrr@10": float(np.mean(np.where(rank <= 10, 1.0 / rank, 0.0)))}
