"""Lexical retrieval (BM25) behind the same Retriever interface as dense retrieval."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.base import Retriever
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from rag.encoders.bm25 import BM25Index
    from rag.index import Index


class LexicalRetriever(Retriever):
    """BM25 over chunks; ``chunks[i]`` is the chunk of the index's i-th document."""

    def __init__(self, bm25: BM25Index, chunks: Sequence[Chunk], *, name: str = "bm25") -> None:
        self.bm25 = bm25
        self.chunks = list(chunks)
        self.name = name

    @classmethod
    def open(cls, folder: Path, index: Index, *, name: str) -> LexicalRetriever:
        from rag.encoders.bm25 import BM25Index

        ids = json.loads((folder / "chunk_ids.json").read_text("utf-8"))
        by_id = {c.id: c for c in index.all_chunks()}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise RuntimeError(
                f"BM25 index at {folder} is out of date ({len(missing)} unknown chunks); "
                "run `rag ingest` again to rebuild it"
            )
        return cls(BM25Index.load(folder), [by_id[i] for i in ids], name=name)

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if not queries or not self.chunks:
            return [[] for _ in queries]
        indices, scores = self.bm25.search(list(queries), min(k, len(self.chunks)))
        results: list[list[Hit]] = []
        for row_idx, row_scores in zip(indices, scores, strict=True):
            hits = [
                Hit(chunk=self.chunks[int(i)], score=float(s), rank=r, source=self.name)
                for r, (i, s) in enumerate(
                    ((i, s) for i, s in zip(row_idx, row_scores, strict=True) if s > 0), start=1
                )
            ]
            results.append(hits)
        return results
