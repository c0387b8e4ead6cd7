"""What the frameworks' embedding adapters share (no framework imported here)."""

from __future__ import annotations

import os
from typing import Any

from rag.base import Encoder


def resolve_encoder(encoder: Encoder | str | os.PathLike[str], device: str) -> Encoder:
    """``encoder`` itself, or the one :func:`rag.encoders.registry.load_encoder` loads by name."""
    if isinstance(encoder, Encoder):
        return encoder
    from rag.encoders.registry import load_encoder

    return load_encoder(encoder, device=device)


def float_rows(vectors: Any) -> list[list[float]]:
    """An ``(n, dim)`` array (or a list of vectors) as plain Python floats."""
    tolist = getattr(vectors, "tolist", None)
    rows = tolist() if tolist is not None else [list(v) for v in vectors]
    return [[float(x) for x in row] for row in rows]
