"""The docstore keeps a document's text once and its chunks as offsets; the index's stores keep
no text; every chunk and hit still reads back whole (issue 13, bounded storage)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import get_chunker
from rag.index import EncoderEntry, Index, IndexConfig, chunkfile
from rag.index.docstore import Docstore
from rag.types import Chunk, Document, sha256_hex


def _document(text: str, doc_id: str = "/docs/a.md") -> Document:
    return Document(id=doc_id, text=text, source=doc_id, content_hash=sha256_hex(text), title="A")


PARAGRAPHS = [
    f"Paragraph {i} says that valve {i} opens at {i * 3} bar and closes again after {i} minutes."
    for i in range(60)
]


def test_chunk_file_round_trips_every_field_and_stores_text_once() -> None:
    doc = _document("# Title\n\n" + "\n\n".join(PARAGRAPHS))
    chunks = get_chunker("recursive", max_tokens=32, context_tokens=128).chunk(doc)
    assert len(chunks) > 10 and all(c.context != c.text for c in chunks[1:-1])
    data = chunkfile.encode(doc, chunks)
    assert chunkfile.decode(json.loads(json.dumps(data))) == chunks
    assert [c.metadata for c in chunkfile.decode(data)] == [c.metadata for c in chunks]
    stored = sum(len(text) for _, text in data["regions"])
    assert stored <= len(doc.text)  # the covered text, once
    assert all(len(row) == 6 for row in data["chunks"])  # nothing but offsets and metadata
    whole_copies = sum(len(c.text) + len(c.context) for c in chunks)
    assert len(json.dumps(data)) < whole_copies / 2


def test_chunks_that_are_not_slices_of_their_document_are_kept_inline() -> None:
    doc = _document("alpha beta gamma delta")
    exact = Chunk(
        id=Chunk.make_id(doc.id, 0, 5, "alpha"),
        doc_id=doc.id,
        text="alpha",
        start=0,
        end=5,
        source=doc.source,
        title="A",
        context="alpha beta",
        context_start=0,
        context_end=10,
    )
    rewritten = replace(exact, id="b", text="ALPHA", context="summary written by an LLM")
    elsewhere = replace(exact, id="c", doc_id="/other", source="/other", title=None, context="")
    data = chunkfile.encode(doc, [exact, rewritten, elsewhere])
    rows = data["chunks"]
    assert len(rows[0]) == 6 and rows[1][6]["text"] == "ALPHA" and rows[1][6]["id"] == "b"
    assert rows[1][6]["context"] == "summary written by an LLM"
    assert chunkfile.decode(data) == [exact, rewritten, elsewhere]


def test_layout_one_files_are_still_read(tmp_path: Path) -> None:
    from rag.stores._codec import chunk_to_json

    doc = _document("one two three four five six seven")
    chunks = get_chunker("token", max_tokens=4).chunk(doc)
    store = Docstore(tmp_path)
    store.put(doc, chunks, ["bm25"])
    store.save_manifest()
    old = {"doc_id": doc.id, "source": doc.source, "chunks": [chunk_to_json(c) for c in chunks]}
    store.path_of(doc.id).write_text(json.dumps(old), "utf-8")
    assert Docstore(tmp_path).chunks_of(doc.id) == chunks


@pytest.fixture
def indexed(tmp_path: Path) -> Index:
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(3):
        body = "\n\n".join(p.replace("valve", ("sluice", "piston", "rotor")[n]) for p in PARAGRAPHS)
        (folder / f"doc{n}.md").write_text(f"# Manual {n}\n\n{body}\n", "utf-8")
    from connectors.directory import load_directory

    config = IndexConfig(encoders=[EncoderEntry("bm25", "lexical")], store="memory")
    index = Index(tmp_path / "idx", config)
    report = index.ingest(load_directory(folder))
    assert not report.failed
    return index


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_index_stores_hold_no_text_and_hits_come_back_whole(indexed: Index) -> None:
    text = sum(p.stat().st_size for p in (indexed.root.parent / "docs").iterdir())
    held = indexed.store("bm25").get(indexed.store("bm25").ids()[:5])
    assert held and all(c.text == "" and c.context == "" for c in held)
    # docstore and lexical store together stay under twice the text (they were ~10x)
    assert _bytes(indexed.root / "docstore") + _bytes(indexed.root / "lexical") < 2 * text
    hits = Index(indexed.root).search("when does the rotor open", k=3)
    assert hits and hits[0].chunk.source.endswith("doc2.md")
    whole = {c.id: c for c in indexed.all_chunks()}
    for hit in hits:
        assert hit.chunk == whole[hit.chunk.id] and hit.chunk.text and hit.chunk.context


def test_a_situated_vector_is_redone_when_only_its_context_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.directory import load_directory
    from tests.fakes import register_hash_encoder

    register_hash_encoder(monkeypatch)
    folder = tmp_path / "docs"
    folder.mkdir()
    first = "The pump starts when the tank is full and stops when it is empty again."
    doc = folder / "a.md"
    doc.write_text(f"# Pumps\n\n{first}\n\nThe drain is closed in winter.\n", "utf-8")
    config = IndexConfig(
        encoders=[EncoderEntry("hash", situated="sitemb"), EncoderEntry("bm25", "lexical")],
        store="memory",
        chunker="sentence",
        chunker_options={"max_tokens": 24, "context_tokens": 64},
    )
    index = Index(tmp_path / "idx", config)
    index.ingest(load_directory(folder))
    pump = next(c for c in index.all_chunks() if "The pump" in c.text)
    before = index.store("hash").vectors([pump.id])[pump.id]

    doc.write_text(f"# Pumps\n\n{first}\n\nThe drain is open all year round.\n", "utf-8")
    report = index.ingest(load_directory(folder))
    again = next(c for c in index.all_chunks() if "The pump" in c.text)
    assert again.id == pump.id and again.context != pump.context  # same chunk, new context
    after = index.store("hash").vectors([pump.id])[pump.id]
    fresh = Index(tmp_path / "fresh", config)
    fresh.ingest(load_directory(folder))
    np.testing.assert_allclose(after, fresh.store("hash").vectors([pump.id])[pump.id], atol=1e-6)
    assert not np.allclose(before, after)
    assert report.chunks_embedded == len(list(index.all_chunks()))  # bm25 alone skipped none


def test_hits_are_hydrated_from_many_threads_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fused retrievers hydrate their hits concurrently; a cache that evicts while other
    threads read and fill it must neither raise nor hand back the wrong chunk."""
    from concurrent.futures import ThreadPoolExecutor

    import rag.index.docstore as docstore_module

    store = Docstore(tmp_path)
    chunker = get_chunker("token", max_tokens=8)
    whole: dict[str, Chunk] = {}
    for n in range(300):
        doc = _document(f"document {n} " + PARAGRAPHS[n % 60], doc_id=f"/docs/{n}.md")
        chunks = chunker.chunk(doc)
        store.put(doc, chunks, ["bm25"])
        whole.update((c.id, c) for c in chunks)
    store.save_manifest()
    size = store.path_of("/docs/0.md").stat().st_size
    monkeypatch.setattr(docstore_module, "CACHED_BYTES", 150 * size)  # holds half of them
    reader = Docstore(tmp_path)
    bare = [replace(c, text="", context="") for c in whole.values()]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often enough to hit a race in every run

    def hydrate(offset: int) -> bool:
        batch = bare[offset:] + bare[:offset]
        return all(got == whole[c.id] for c, got in zip(batch, reader.whole(batch), strict=True))

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert all(pool.map(hydrate, range(0, len(bare), len(bare) // 16)))
    finally:
        sys.setswitchinterval(interval)
