"""Opening an index: settings that cannot apply fail loudly; pruning compares path components;
the one-call ``Index.create`` takes each encoder's kind from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag
from connectors.directory import load_directory
from rag.cli import main
from rag.index import EncoderEntry, Index, IndexConfig, IndexConfigError
from rag.index.docstore import is_within


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_create_takes_kinds_from_the_registry(tmp_path: Path) -> None:
    index = rag.Index.create(tmp_path / "idx", encoders=["minilm", "bm25"], store="memory")
    assert [(e.name, e.kind) for e in index.config.encoders] == [
        ("minilm", "dense"),
        ("bm25", "lexical"),
    ]
    assert EncoderEntry("bm25").kind == "lexical"
    assert EncoderEntry("some/model-folder").kind == "dense"


def test_a_chunker_chunks_a_plain_string() -> None:
    text = "Sodium cools the reactor. " * 40
    chunks = rag.get_chunker("sentence", max_tokens=32).chunk(text)
    assert len(chunks) > 1
    assert all(text[c.start : c.end] == c.text for c in chunks)
    again = rag.get_chunker("sentence", max_tokens=32).chunk(text)
    assert [c.id for c in chunks] == [c.id for c in again]  # same string, same ids


def test_prune_compares_path_components_not_prefixes(tmp_path: Path) -> None:
    docs = write(tmp_path / "docs", {"a.md": "# A\n\nalpha text about sodium.\n"})
    old = write(tmp_path / "docs-old", {"b.md": "# B\n\nbeta text about krill.\n"})
    index = Index.create(tmp_path / "idx", encoders=["minilm"], store="memory")
    index.ingest(load_directory(docs))
    index.ingest(load_directory(old))
    report = index.ingest(load_directory(docs), prune_missing_under=docs.resolve())
    assert report.removed == []
    assert {Path(s).name for s in index.known_hashes()} == {"a.md", "b.md"}

    (docs / "a.md").unlink()
    report = index.ingest(load_directory(docs), prune_missing_under=docs.resolve())
    assert [Path(s).name for s in report.removed] == ["a.md"]
    assert {Path(s).name for s in index.known_hashes()} == {"b.md"}
    assert index.store("minilm").count() == len(index.chunks_of(str(old.resolve() / "b.md")))


@pytest.mark.parametrize(
    ("path", "folder", "inside"),
    [
        ("/d/docs/a.md", "/d/docs", True),
        ("/d/docs/sub/a.md", "/d/docs/", True),
        ("/d/docs-old/b.md", "/d/docs", False),
        ("/d/docs", "/d/docs", True),
        ("/d/other/../docs/a.md", "/d/docs", True),
        ("/d/doc", "/d/docs", False),
    ],
)
def test_is_within(path: str, folder: str, inside: bool) -> None:
    assert is_within(path, folder) is inside


def built(tmp_path: Path, **config: object) -> Path:
    docs = write(tmp_path / "docs", {"a.md": "# A\n\nalpha text about sodium cooling.\n"})
    index = Index(tmp_path / "idx", IndexConfig(encoders=[EncoderEntry("minilm")], **config))
    index.ingest(load_directory(docs))
    return tmp_path / "idx"


def test_another_chunker_or_store_on_an_existing_index_is_an_error(tmp_path: Path) -> None:
    root = built(tmp_path, store="memory", chunker_options={"max_tokens": 64})
    before = (root / "index.json").read_text("utf-8")
    with pytest.raises(IndexConfigError, match=r"chunked with 'recursive'.*'token'.*rebuild=True"):
        Index(root, IndexConfig(store="memory", chunker="token"))
    with pytest.raises(IndexConfigError, match=r"max_tokens.*\(64, 128\)"):
        Index(root, IndexConfig(store="memory", chunker_options={"max_tokens": 128}))
    with pytest.raises(IndexConfigError, match=r"uses store 'memory'; 'chroma' was requested"):
        Index(root, IndexConfig(chunker_options={"max_tokens": 64}))
    with pytest.raises(IndexConfigError, match=r"situated='plain'; situated='prefix'"):
        Index.create(root, ["minilm"], store="memory", chunker_options={"max_tokens": 64},
                     situated="prefix")  # fmt: skip
    assert (root / "index.json").read_text("utf-8") == before  # nothing was changed
    # the same settings spelled out, or no settings at all, open it
    Index(
        root, IndexConfig(store="memory", chunker_options={"max_tokens": 64, "context_tokens": 512})
    )
    assert Index(root).config.chunker_options == {"max_tokens": 64}


def test_rebuild_starts_the_index_again_with_the_new_settings(tmp_path: Path) -> None:
    root = built(tmp_path, store="memory")
    index = Index.create(root, ["minilm"], store="memory", chunker="token", rebuild=True)
    assert index.known_hashes() == {} and not (root / "memory").exists()
    index.ingest(load_directory(tmp_path / "docs"))
    assert json.loads((root / "index.json").read_text("utf-8"))["chunker"] == "token"
    assert index.search("sodium cooling", k=1)[0].chunk.source.endswith("a.md")


def test_cli_names_the_flags_for_a_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = built(tmp_path, store="memory")
    docs = str(tmp_path / "docs")
    args = ["ingest", docs, "--index", str(root), "--no-progress"]
    assert main([*args, "--chunker", "token"]) == 2
    err = capsys.readouterr().err
    assert "'recursive'" in err and "'token'" in err and "--rebuild" in err
    assert "rebuild=True" not in err  # the command line speaks of flags
    assert main([*args, "--store", "chroma"]) == 2
    assert main(args) == 0  # unspecified settings keep the stored ones
    assert main([*args, "--chunker", "token", "--rebuild"]) == 0
    assert Index(root).config.chunker == "token"


def test_cli_without_encoder_flags_keeps_the_index_encoders(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSodium cools the reactor.\n", "utf-8")
    root = tmp_path / "idx"
    base = ["ingest", str(docs), "--index", str(root), "--store", "memory", "--no-progress"]
    assert main([*base, "--encoder", "bm25"]) == 0
    (docs / "b.md").write_text("# B\n\nPenguins eat krill.\n", "utf-8")
    assert main(base) == 0  # no --encoder: bm25 only, no default minilm added
    assert [e.name for e in Index(root).config.encoders] == ["bm25"]
    assert Index(root).search("krill", k=1)[0].chunk.source.endswith("b.md")


def test_the_trained_window_is_pinned_and_older_indexes_keep_theirs(tmp_path: Path) -> None:
    """A later default window must not mix two window lengths in one index: a new trained
    entry records the window it is built with, and an index.json written before windows were
    recorded is read with the 512 tokens its vectors were made with."""
    from rag.encoders.situated.trained import TRAINED_WINDOW_TOKENS

    config = IndexConfig(encoders=[EncoderEntry("minilm", "dense", "trained")], store="memory")
    written = config.to_json()
    assert written["encoders"][0]["window_tokens"] == TRAINED_WINDOW_TOKENS
    assert IndexConfig.from_json(written) == config

    legacy = json.loads(json.dumps(written))
    del legacy["encoders"][0]["window_tokens"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "index.json").write_text(json.dumps(legacy), "utf-8")
    old = Index(tmp_path / "old")
    entry = old.config.entry("minilm")
    assert entry.window_tokens == 512
    assert old._situated(entry).window_tokens == 512
    assert EncoderEntry("minilm", "dense", "late").window_tokens is None
