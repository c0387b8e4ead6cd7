"""Orphans: ids a store holds that no manifest names (a writer killed between storing a batch
and committing it). ``rag info --check`` names them, the next ingest removes them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag.cli import main
from rag.index import Index, journal
from rag.index.check import check

TESTS = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": str(TESTS.parent)}

# Ingest ``source`` and die (as kill -9 would: no cleanup) when the manifest is first saved,
# i.e. after every store holds the batch and before the manifest names it.
KILLED = textwrap.dedent(
    """
    import os, sys

    sys.path.insert(0, sys.argv[1])
    from test_readers_snapshot import register_in_child

    from rag.index.docstore import Docstore

    register_in_child()
    Docstore.save_manifest = lambda self: os._exit(9)
    from connectors.directory import load_directory
    from rag.index import Index

    Index(sys.argv[2]).ingest(load_directory(sys.argv[3]))
    """
)


@pytest.fixture(autouse=True)
def hash_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakes import register_hash_encoder

    register_hash_encoder(monkeypatch)


def ingest(source: Path, index: Path, store: str, *extra: str) -> int:
    args = ["ingest", str(source), "--index", str(index), "--encoder", "hash"]
    return main([*args, "--encoder", "bm25", "--store", store, "--no-progress", *extra])


def stored_ids(index: Index) -> dict[str, set[str]]:
    return {e.name: set(index.store(e.name).ids()) for e in index.config.encoders}


def named_ids(index: Index) -> set[str]:
    return {i for e in index.manifest["files"].values() for i in e["chunk_ids"]}


@pytest.mark.parametrize("store", ["memory", "chroma"])
def test_a_kill_before_the_commit_leaves_orphans_that_check_names_and_ingest_removes(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src, ix = tmp_path / "src", tmp_path / "ix"
    src.mkdir()
    (src / "a.md").write_text("# A\n\nbone heart liver alpha\n", "utf-8")
    assert ingest(src, ix, store) == 0
    (src / "b.md").write_text("# B\n\nbone heart gene zebrafish\n", "utf-8")
    env = {**ENV, "PATH": "/usr/bin:/bin"}
    killed = subprocess.run([sys.executable, "-c", KILLED, str(TESTS), str(ix), str(src)], env=env)
    assert killed.returncode == 9
    (src / "b.md").unlink()  # the file the orphans came from is gone

    index = Index(ix)
    orphans = {n: ids - named_ids(index) for n, ids in stored_ids(index).items()}
    assert all(orphans.values()), orphans  # every store holds b's chunks, no manifest names them
    capsys.readouterr()
    assert main(["info", "--index", str(ix), "--check"]) == 1
    out = capsys.readouterr().out
    assert "INCONSISTENT" in out and next(iter(orphans["hash"])) in out
    assert all(f"{len(ids)} orphans" in out for ids in orphans.values())
    # readers never see them, even before the clean-up
    assert all(h.chunk.doc_id.endswith("a.md") for h in index.search("zebrafish gene", 10))

    assert ingest(src, ix, store, "--prune") == 0
    capsys.readouterr()
    assert main(["info", "--index", str(ix), "--check"]) == 0
    assert "consistent" in capsys.readouterr().out
    index = Index(ix)
    assert all(ids == named_ids(index) for ids in stored_ids(index).values())
    assert not (ix / journal.NAME).exists()
    hits = index.search("zebrafish gene", 10, dedup=False)
    assert hits and not any(h.chunk.doc_id.endswith("b.md") for h in hits)


def test_the_next_ingest_removes_exactly_the_ids_left_pending(tmp_path: Path) -> None:
    src, ix = tmp_path / "src", tmp_path / "ix"
    src.mkdir()
    (src / "a.md").write_text("bone heart liver alpha\n", "utf-8")
    assert ingest(src, ix, "memory") == 0
    index = Index(ix)
    from rag.types import Chunk

    ghost = Chunk(id="ghost", doc_id=str(src / "gone.md"), text="bone ghost", start=0, end=10)
    journal.begin(ix, ["ghost"])  # as a writer does before it stores a batch
    index.store("hash").add([ghost], index.chunk_embedder(index.config.entry("hash"))([ghost]))
    assert "ghost" in index.store("hash").ids()
    assert not check(index).ok
    assert ingest(src, ix, "memory") == 0  # nothing changed in src: it still cleans up
    index = Index(ix)
    assert "ghost" not in index.store("hash").ids() and check(index).ok


def test_check_names_missing_chunks_and_repair_restores_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, ix = tmp_path / "src", tmp_path / "ix"
    src.mkdir()
    for name in ("a", "b"):
        (src / f"{name}.md").write_text(f"bone heart {name}word\n", "utf-8")
    assert ingest(src, ix, "memory") == 0
    index = Index(ix)
    lost = sorted(named_ids(index))[0]
    index.store("bm25").delete([lost])
    (ix / "docstore" / "stray.json").write_text("{}", "utf-8")
    capsys.readouterr()
    assert main(["info", "--index", str(ix), "--check", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert not found["ok"] and found["unnamed_files"] == ["stray.json"]
    assert {s["name"]: s["missing"] for s in found["stores"]} == {"hash": [], "bm25": [lost]}
    assert main(["info", "--index", str(ix), "--repair"]) == 0
    index = Index(ix)
    assert lost in index.store("bm25").ids() and check(index).ok
    assert not (ix / "docstore" / "stray.json").exists()
