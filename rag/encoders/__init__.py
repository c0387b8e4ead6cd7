"""Encoders: texts to vectors (dense) and BM25 (lexical). Backends are imported on first use.

from rag.encoders import load_encoder
enc = load_encoder("minilm")            # or "mpnet", "wordllama", "e5", or a model folder
vectors = enc.embed_documents(["..."])  # (n, 384) float32, unit length
"""

from __future__ import annotations

from rag.encoders.registry import (
    REGISTRY,
    EncoderSpec,
    encoder_kind,
    get_spec,
    installed_models,
    load_encoder,
)

__all__ = [
    "REGISTRY",
    "EncoderSpec",
    "encoder_kind",
    "get_spec",
    "installed_models",
    "load_encoder",
]
