"""Retrieval evaluation: BEIR loader, ranking metrics, benchmark runner (``rag eval``).

Light to import: numpy only; encoders and chunkers load when a run needs them.
"""

from rag.eval.beir import BeirDataset, available_splits, load_beir
from rag.eval.metrics import (
    evaluate,
    ndcg_at_k,
    per_query_scores,
    recall_at_k,
    reciprocal_rank_at_k,
)

__all__ = [
    "BeirDataset",
    "available_splits",
    "evaluate",
    "load_beir",
    "ndcg_at_k",
    "per_query_scores",
    "recall_at_k",
    "reciprocal_rank_at_k",
]
