"""The store registry: build a store by name, and say which names exist when one is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.base import Store
from rag.stores import STORES, BM25Store, ChromaStore, MemoryStore, get_store
from rag.types import Chunk


def test_unknown_kind_names_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="choose one of: bm25, chroma, chroma-http, memory"):
        get_store("faiss")  # type: ignore[arg-type]


def test_each_kind_builds_a_store(tmp_path: Path) -> None:
    assert set(STORES) == {"chroma", "memory", "chroma-http", "bm25", "pgvector"}
    plain = get_store("memory")
    assert isinstance(plain, MemoryStore) and plain.path is None
    persisted = get_store("memory", path=tmp_path / "m")
    persisted.add([Chunk(id="a", doc_id="d", text="a", start=0, end=1)], np.ones((1, 4)) / 2)
    assert get_store("memory", path=tmp_path / "m").count() == 1
    chroma = get_store("chroma", path=tmp_path / "c", collection="enc")
    assert isinstance(chroma, ChromaStore) and isinstance(chroma, Store)
    chroma.close()
    lexical = get_store("bm25")
    assert isinstance(lexical, BM25Store) and lexical.kind == "lexical" and lexical.path is None
    persisted = get_store("bm25", path=tmp_path / "b", method="robertson")
    persisted.add([Chunk(id="a", doc_id="d", text="a b", start=0, end=3)], [["a", "b"]])
    again = get_store("bm25", path=tmp_path / "b")
    assert again.count() == 1 and isinstance(again, BM25Store) and again.method == "robertson"


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError):
        get_store("memory", collection="x")
