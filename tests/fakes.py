"""Deterministic fakes shared by tests (no model needed)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path

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


def hash_encoder_spec():  # noqa: ANN201
    """The registry entry of the test-only dense encoder ``"hash"``."""
    from rag.encoders.registry import EncoderSpec

    return EncoderSpec(
        name="hash",
        kind="dense",
        package="-",
        dim=HashEncoder.dim,
        description="test-only bag-of-words hash encoder",
        loader=lambda device="cpu": HashEncoder(),
        dists=(),
        locate=lambda: "-",
    )


def register_hash_encoder(monkeypatch) -> None:  # noqa: ANN001
    """Register :class:`HashEncoder` as the dense encoder ``"hash"`` for one test."""
    from rag.encoders.registry import REGISTRY

    monkeypatch.setitem(REGISTRY, "hash", hash_encoder_spec())


def tiny_cross_encoder(folder: Path, texts: Sequence[str]) -> Path:
    """A randomly initialised BERT cross-encoder with a word-level vocabulary, saved offline."""
    import pytest

    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    words = sorted({w for t in texts for w in t.lower().split()} | {"storm", "q"})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=1,
    )
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
