"""Deterministic fakes shared by tests (no model needed)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from rag.base import Encoder


class HashEncoder(Encoder):
    """Deterministic bag-of-words vectors: each lower-cased word adds 1 to a crc32 bucket
    (punctuation such as "." and ">" separates words)."""

    name = "hash"
    dim = 512

    def _embed(self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.sub(r"[.>]", " ", text.lower()).split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def register_hash_encoder(monkeypatch) -> None:  # noqa: ANN001
    """Register :class:`HashEncoder` as the dense encoder ``"hash"`` for one test."""
    from rag.encoders.registry import REGISTRY, EncoderSpec

    spec = EncoderSpec(
        name="hash",
        kind="dense",
        package="-",
        dim=HashEncoder.dim,
        description="test-only bag-of-words hash encoder",
        loader=lambda device="cpu": HashEncoder(),
        dists=(),
        locate=lambda: "-",
    )
    monkeypatch.setitem(REGISTRY, "hash", spec)
