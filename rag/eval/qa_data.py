"""The corpus and questions of the answer-quality benchmark, and its retrievers.

A short-answer QA set is a BEIR folder plus ``answers.jsonl`` (``{"_id", "answer"}``, the
answer a string or a list of strings). Every corpus record becomes one chunk (the title kept
apart, embedded as ``title + text``), indexed by each encoder in the product's exact store of
its kind (:mod:`rag.eval.systems`) and searched by the product's retriever.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.retrieval.store_retriever import StoreRetriever
from rag.types import Chunk


@dataclass
class QADataset:
    """Questions with gold answers over a corpus of one chunk per record."""

    name: str
    chunks: list[Chunk]
    questions: dict[str, str]
    answers: dict[str, list[str]]

    def limit(self, n: int | None) -> QADataset:
        if n is None or n >= len(self.questions):
            return self
        if n < 1:
            raise ValueError(f"the question limit must be at least 1, got {n}")
        kept = dict(list(self.questions.items())[:n])
        return QADataset(self.name, self.chunks, kept, {q: self.answers[q] for q in kept})


def load_answers(path: Path) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            gold = obj.get("answer", obj.get("answers"))
            if "_id" not in obj or gold is None:
                raise ValueError(f"{path}:{line_no}: expected {{'_id', 'answer'}}")
            answers[str(obj["_id"])] = [gold] if isinstance(gold, str) else [str(g) for g in gold]
    return answers


def load_qa_dataset(folder: str | Path, split: str = "test") -> QADataset:
    """A BEIR folder with ``answers.jsonl``; the questions are those judged in ``split`` that
    have a gold answer (a ValueError when none has)."""
    from rag.eval.beir import load_beir
    from rag.eval.units import corpus_document, document_chunk

    root = Path(folder)
    answers_path = root / "answers.jsonl"
    if not answers_path.is_file():
        raise FileNotFoundError(f"{root} has no answers.jsonl (gold answers: {{'_id', 'answer'}})")
    beir = load_beir(root, split)
    answers = load_answers(answers_path)
    questions = {q: t for q, t in beir.queries.items() if q in answers}
    if not questions:
        raise ValueError(f"no question of split {split!r} has a gold answer in {answers_path}")
    chunks = [
        document_chunk(corpus_document(beir.name, doc_id, title, text))
        for doc_id, (title, text) in beir.corpus.items()
    ]
    return QADataset(beir.name, chunks, questions, {q: answers[q] for q in questions})


def embed_text(chunk: Chunk) -> str:
    """What the encoders see: the title, then the text (the prompt shows them apart)."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def build_retrievers(
    chunks: Sequence[Chunk],
    encoders: Sequence[str],
    *,
    cache: bool = True,
    label: str = "",
    batch_size: int = 32,
) -> dict[str, StoreRetriever]:
    """The product's retriever per encoder name, over the chunks in an in-memory exact store
    (BM25 terms for lexical names; dense vectors, cached on disk when ``cache``)."""
    from rag.eval.systems import build_store, load_base_encoder

    texts = [embed_text(c) for c in chunks]
    retrievers: dict[str, StoreRetriever] = {}
    for name in encoders:
        encoder = load_base_encoder(name)
        if cache and encoder.kind == "dense":
            from rag.eval.cache import CachedEncoder

            encoder = CachedEncoder(encoder, label=label)
        store = build_store(encoder, chunks, texts=texts, batch_size=batch_size)
        retrievers[name] = StoreRetriever(encoder, store, name=name)
    return retrievers
