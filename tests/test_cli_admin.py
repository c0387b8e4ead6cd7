"""``rag remove``, ``rag drop-encoder`` and ``rag reset`` (issue 15, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import register_hash_encoder

from rag.cli import main
from rag.index import Index


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An index (hash + bm25, memory store) of docs/a.md, docs/sub/b.md and docs/sub/c.md."""
    register_hash_encoder(monkeypatch)
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Air\n\nThe barometer measures air pressure.\n", "utf-8")
    (docs / "sub" / "b.md").write_text("# Hill\n\nSheep graze on the hill.\n", "utf-8")
    (docs / "sub" / "c.md").write_text("# Sea\n\nWhales sing in the deep sea.\n", "utf-8")
    root = tmp_path / "idx"
    argv = ["ingest", str(docs), "--index", str(root), "--no-progress", "--store", "memory"]
    assert main([*argv, "--encoder", "hash", "--encoder", "bm25"]) == 0
    return docs, root


def sources(root: Path) -> list[str]:
    return sorted(Path(e["source"]).name for e in Index(root).manifest["files"].values())


def test_remove_drops_a_file_then_a_folder_from_every_store(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    docs, root = built
    assert main(["remove", str(docs / "a.md"), "--index", str(root)]) == 0
    assert "removed 1 files" in capsys.readouterr().out
    assert sources(root) == ["b.md", "c.md"]
    index = Index(root)
    assert [index.store(n).count() for n in ("hash", "bm25")] == [2, 2]
    assert all(h.chunk.source.endswith(("b.md", "c.md")) for h in index.search("barometer", 5))
    assert main(["remove", str(docs / "sub"), "--index", str(root)]) == 0
    assert sources(root) == []
    assert Index(root).store("bm25").count() == 0


def test_remove_of_something_not_indexed_fails(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    docs, root = built
    assert main(["remove", str(docs / "nothing.md"), "--index", str(root)]) == 1
    assert "nothing indexed under" in capsys.readouterr().err
    assert sources(root) == ["a.md", "b.md", "c.md"]


def test_drop_encoder_removes_its_store_and_entry_but_not_the_last(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    docs, root = built
    assert main(["drop-encoder", "hash", "--index", str(root)]) == 0
    index = Index(root)
    assert index.config.names() == ["bm25"] and not (root / "memory" / "hash").exists()
    assert all(e["encoders"] == ["bm25"] for e in index.manifest["files"].values())
    assert index.search("barometer", 1)[0].chunk.source.endswith("a.md")
    assert main(["drop-encoder", "bm2", "--index", str(root)]) == 2
    assert "did you mean 'bm25'?" in capsys.readouterr().err
    assert main(["drop-encoder", "bm25", "--index", str(root)]) == 2
    assert "only encoder" in capsys.readouterr().err
    assert Index(root).config.names() == ["bm25"]
    # a re-run with the same encoders has nothing to do
    argv = ["ingest", str(docs), "--index", str(root), "--no-progress"]
    assert main(argv) == 0
    assert "unchanged 3" in capsys.readouterr().out


def test_drop_encoder_deletes_a_chroma_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_hash_encoder(monkeypatch)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Air\n\nThe barometer measures air pressure.\n", "utf-8")
    root = tmp_path / "idx"
    argv = ["ingest", str(docs), "--index", str(root), "--no-progress", "--encoder", "hash"]
    assert main([*argv, "--encoder", "bm25"]) == 0
    assert main(["drop-encoder", "hash", "--index", str(root)]) == 0
    import chromadb

    client = chromadb.PersistentClient(path=str(root / "chroma"))
    assert [c.name for c in client.list_collections()] == []
    assert main([*argv]) == 0  # hash again: embedded anew into a fresh collection
    assert Index(root).store("hash").count() == 1


def test_reset_needs_an_index_and_a_yes(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, root = built
    other = tmp_path / "not-an-index"
    other.mkdir()
    (other / "keep.txt").write_text("mine", "utf-8")
    assert main(["reset", "--index", str(other), "--yes"]) == 2
    assert "no index at" in capsys.readouterr().err and (other / "keep.txt").exists()
    assert main(["reset", "--index", str(root)]) == 1  # no terminal to say yes
    assert "--yes" in capsys.readouterr().err and Index(root).exists
    (root / "notes.txt").write_text("not the index's", "utf-8")
    assert main(["reset", "--index", str(root), "--yes"]) == 0
    assert "kept" in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]
    (root / "notes.txt").unlink()
    assert main(["info", "--index", str(root)]) == 2  # an empty folder is no index


def test_reset_removes_the_folder_it_empties(built: tuple[Path, Path]) -> None:
    _, root = built
    assert main(["reset", "--index", str(root), "--yes"]) == 0
    assert not root.exists()


def test_reset_knows_every_part_of_an_index() -> None:
    from rag.index import admin, folder, journal

    assert set(folder._PARTS) <= set(admin.PARTS) and journal.NAME in admin.PARTS
