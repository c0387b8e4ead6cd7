"""The ingest pipeline: incremental, idempotent, crash-safe, and honest about failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.index import EncoderEntry, Index, IndexConfig

DOCS = {
    "alpha.md": "# Alpha\n\nThe alpha reactor cools itself with liquid sodium.\n\n"
    "## Safety\n\nA passive valve shuts the loop when the pressure rises.\n",
    "beta.txt": "Beta notes. Penguins live in the southern hemisphere and eat krill.\n",
    "gamma.md": "# Gamma\n\nGamma rays are photons of very high energy emitted by nuclei.\n",
}


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def ingest(
    index_dir: Path, folder: Path, *, store: str = "memory", prune: bool = False, lexical=True
):
    from connectors.directory import load_directory

    encoders = [EncoderEntry("minilm")] + (
        [EncoderEntry("bm25", kind="lexical")] if lexical else []
    )
    config = IndexConfig(
        encoders=encoders,
        store=store,  # type: ignore[arg-type]
        chunker_options={"max_tokens": 64},
    )
    index = Index(index_dir, config)
    report = index.ingest(
        load_directory(folder), prune_missing_under=str(folder.resolve()) if prune else None
    )
    return index, report


@pytest.mark.parametrize("store", ["memory", "chroma"])
def test_reingest_unchanged_folder_does_no_embedding(tmp_path: Path, store: str) -> None:
    folder = write_docs(tmp_path / "docs")
    index, first = ingest(tmp_path / "idx", folder, store=store)
    assert len(first.ingested) == 3 and not first.failed
    assert first.chunks_embedded == first.chunks_added > 0

    again, second = ingest(tmp_path / "idx", folder, store=store)
    assert len(second.unchanged) == 3
    assert second.ingested == [] and second.chunks_embedded == 0
    assert again.store("minilm").count() == first.chunks_added


def test_changed_file_replaces_its_chunks_and_nothing_else(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    index, _ = ingest(tmp_path / "idx", folder)
    before = {c.id for c in index.all_chunks()}
    gamma_before = {c.id for c in index.all_chunks() if c.source.endswith("gamma.md")}

    (folder / "beta.txt").write_text("Beta notes. Emperor penguins breed in winter.\n", "utf-8")
    index, report = ingest(tmp_path / "idx", folder)
    assert [Path(p).name for p in report.ingested] == ["beta.txt"]
    after = {c.id for c in index.all_chunks()}
    assert gamma_before <= after
    assert index.store("minilm").count() == len(after)
    beta_text = " ".join(c.text for c in index.all_chunks() if c.source.endswith("beta.txt"))
    assert "Emperor" in beta_text and "krill" not in beta_text
    assert len(before ^ after) >= 2  # the old beta chunk left, the new one came

    hits = index.retriever("minilm").retrieve("which penguins breed in winter?", k=1)
    assert hits[0].chunk.source.endswith("beta.txt")


def test_deleted_file_is_removed_only_when_asked(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    index, _ = ingest(tmp_path / "idx", folder)
    total = index.store("minilm").count()
    (folder / "gamma.md").unlink()

    index, report = ingest(tmp_path / "idx", folder)
    assert report.removed == [] and index.store("minilm").count() == total

    index, report = ingest(tmp_path / "idx", folder, prune=True)
    assert [Path(p).name for p in report.removed] == ["gamma.md"]
    assert all(not c.source.endswith("gamma.md") for c in index.all_chunks())
    assert index.store("minilm").count() == len(list(index.all_chunks()))
    lexical = index.retriever("bm25").retrieve("gamma rays photons", k=5)
    assert all(not h.chunk.source.endswith("gamma.md") for h in lexical)


def test_failed_file_keeps_what_was_stored(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    index, _ = ingest(tmp_path / "idx", folder)
    count = index.store("minilm").count()
    (folder / "beta.txt").write_bytes(b"\x00\x01\x02binary now\x00" * 10)
    (folder / "empty.md").write_bytes(b"")

    index, report = ingest(tmp_path / "idx", folder, prune=True)
    reasons = {Path(e.path).name: e.reason for e in report.failed}
    assert set(reasons) == {"beta.txt", "empty.md"}
    assert all(reasons.values())
    assert report.removed == []
    assert index.store("minilm").count() == count
    assert any(c.source.endswith("beta.txt") for c in index.all_chunks())


def test_search_returns_hits_with_source_section_and_offsets(tmp_path: Path) -> None:
    folder = write_docs(tmp_path / "docs")
    index, _ = ingest(tmp_path / "idx", folder)
    hits = index.retriever("minilm").retrieve("what shuts the loop when pressure rises?", k=3)
    top = hits[0]
    assert top.rank == 1 and top.source == "minilm"
    assert top.chunk.source.endswith("alpha.md")
    assert top.chunk.section[-1] == "Safety"
    text = (folder / "alpha.md").read_text("utf-8")
    assert text[top.chunk.start : top.chunk.end] == top.chunk.text
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score

    lexical = index.retriever("bm25").retrieve("penguins krill", k=2)
    assert lexical[0].chunk.source.endswith("beta.txt")


INTERRUPTED_INGEST = r"""
import sys, time
from connectors.directory import load_directory
from rag.index import EncoderEntry, Index, IndexConfig

def slow(items):
    for item in items:
        yield item
        time.sleep(0.05)

def taken(path):  # a file stored and committed (batch_chunks=1: each file on its own)
    print("yielded", flush=True)

index = Index(sys.argv[1], IndexConfig(encoders=[EncoderEntry("minilm")], store=sys.argv[3],
              chunker_options={"max_tokens": 64}))
index.ingest(slow(load_directory(sys.argv[2])), batch_chunks=1, progress=taken)
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "chroma"])
def test_killed_ingest_leaves_consistent_index_and_resumes(tmp_path: Path, store: str) -> None:
    docs = {
        f"doc{i:02d}.md": f"# Doc {i}\n\nFact number {i} is about topic {i * 7}.\n"
        for i in range(30)
    }
    folder = write_docs(tmp_path / "docs", docs)
    script = tmp_path / "ingest.py"
    script.write_text(INTERRUPTED_INGEST, "utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "idx"), str(folder), store],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    seen = 0
    deadline = time.time() + 120
    while seen < 8 and time.time() < deadline:
        if proc.stdout.readline().startswith("yielded"):
            seen += 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    index = Index(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text("utf-8"))
    committed = manifest["files"]
    assert 0 < len(committed) < 30
    stored = index.store("minilm")
    for entry in committed.values():  # every committed file is fully searchable
        assert stored.existing_ids(entry["chunk_ids"]) == set(entry["chunk_ids"])

    index, report = ingest(tmp_path / "idx", folder, store=store, lexical=False)
    assert len(report.unchanged) == len(committed)
    assert len(report.ingested) == 30 - len(committed)
    all_ids = [c.id for c in index.all_chunks()]
    assert len(all_ids) == len(set(all_ids)) == 30
    assert index.store("minilm").count() == 30


def test_known_hashes_skip_parsing_and_adding_an_encoder_embeds_only_for_it(
    tmp_path: Path,
) -> None:
    from connectors.directory import UnchangedFile, load_directory

    folder = write_docs(tmp_path / "docs")
    index, first = ingest(tmp_path / "idx", folder, lexical=False)
    items = list(load_directory(folder, known_hashes=index.known_hashes()))
    assert all(isinstance(i, UnchangedFile) for i in items) and len(items) == 3

    wider = Index(
        tmp_path / "idx",
        IndexConfig(
            encoders=[EncoderEntry("minilm"), EncoderEntry("wordllama")],
            store="memory",
            chunker_options={"max_tokens": 64},
        ),
    )
    report = wider.ingest(load_directory(folder, known_hashes=wider.known_hashes()))
    assert report.chunks_embedded == first.chunks_added  # wordllama's vectors only
    assert wider.store("wordllama").count() == wider.store("minilm").count() == first.chunks_added
    hits = wider.retriever("wordllama").retrieve("penguins krill", k=1)
    assert hits[0].chunk.source.endswith("beta.txt")
    again = Index(tmp_path / "idx").ingest(load_directory(folder))
    assert len(again.unchanged) == 3 and again.chunks_embedded == 0


@pytest.mark.parametrize("mode", ["prefix", "late"])
def test_situated_mode_is_recorded_and_used_for_chunks(tmp_path: Path, mode: str) -> None:
    from connectors.directory import load_directory

    folder = write_docs(tmp_path / "docs")
    config = IndexConfig(
        encoders=[EncoderEntry("minilm", situated=mode)],
        store="memory",
        chunker_options={"max_tokens": 16},
    )
    index = Index(tmp_path / "idx", config)
    index.ingest(load_directory(folder))
    reopened = Index(tmp_path / "idx")
    assert reopened.config.encoders[0].situated == mode
    chunk = next(c for c in reopened.all_chunks() if c.section and c.section[-1] == "Safety")
    plain = reopened.encoder("minilm").embed_documents([chunk.text])[0]
    stored = reopened.store("minilm").search(plain, k=len(list(reopened.all_chunks())))
    stored_vec = {c.id: score for c, score in stored}[chunk.id]  # stores hold no text
    assert stored_vec < 0.999  # the stored vector is not the chunk text alone
    hits = reopened.retriever().retrieve("what shuts the loop when pressure rises?", k=1)
    assert hits[0].chunk.source.endswith("alpha.md")
    with pytest.raises(ValueError, match="situated"):
        Index(tmp_path / "idx", IndexConfig(encoders=[EncoderEntry("minilm")], store="memory"))
