"""Names are checked before anything is parsed or written, and a failing run leaves the index as
it was (issue 15, item 8): typos get "did you mean", exit code 2 and a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import register_hash_encoder

from rag.cli import main
from rag.index import Index
from rag.names import (
    CHUNKERS,
    ENCODERS,
    FUSION_METHODS,
    METRICS,
    SITUATED,
    STORES,
    STRATEGIES,
    UnknownNameError,
    suggest,
)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Air\n\nThe barometer measures air pressure.\n", "utf-8")
    (folder / "b.md").write_text("# Hill\n\nSheep graze on the hill by the river.\n", "utf-8")
    return folder


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of an index folder but the lock (whose holder record each writer rewrites)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "writer.lock"
    }


def ingest(docs: Path, root: Path, *flags: str) -> list[str]:
    return ["ingest", str(docs), "--index", str(root), "--no-progress", *flags]


def parse_failure(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line
    return err


def test_the_static_name_lists_match_the_registries() -> None:
    from rag.answering.registry import STRATEGIES as strategies
    from rag.chunking import CHUNKERS as chunkers
    from rag.confidence import METRICS as metrics
    from rag.encoders.registry import REGISTRY
    from rag.encoders.situated import SITUATED_MODES
    from rag.index.config import STORE_KINDS
    from rag.retrieval.fusion import FUSIONS

    assert set(ENCODERS) == set(REGISTRY)
    assert set(CHUNKERS) == set(chunkers) and set(STORES) == set(STORE_KINDS)
    assert set(SITUATED) == set(SITUATED_MODES) and set(FUSION_METHODS) == set(FUSIONS)
    assert set(METRICS) == set(metrics) and set(STRATEGIES) == set(strategies)


def test_suggestions_are_for_near_misses_only() -> None:
    assert suggest("minlm", ENCODERS) == "minilm"
    assert suggest("recursiv", CHUNKERS) == "recursive"
    assert suggest("zzzz", ENCODERS) is None


@pytest.mark.parametrize(
    ("flags", "wanted"),
    [
        (["--encoder", "minlm"], "did you mean 'minilm'?"),
        (["--chunker", "recursiv"], "did you mean 'recursive'?"),
        (["--store", "chrom"], "did you mean 'chroma'?"),
        (["--situated", "prefx"], "did you mean 'prefix'?"),
    ],
)
def test_ingest_typos_fail_before_any_write(
    flags: list[str], wanted: str, docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = parse_failure(ingest(docs, tmp_path / "new", *flags), capsys)
    assert wanted in err and "choose one of:" in err
    assert not (tmp_path / "new").exists()  # no folder for a new index


def test_a_typo_leaves_an_existing_index_exactly_as_it_was_and_usable(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_hash_encoder(monkeypatch)
    root = tmp_path / "idx"
    assert main(ingest(docs, root, "--encoder", "bm25", "--store", "memory")) == 0
    before = snapshot(root)
    parse_failure(ingest(docs, root, "--encoder", "minlm"), capsys)
    parse_failure(ingest(docs, root, "--chunker", "recursiv"), capsys)
    assert snapshot(root) == before
    # the right name then works, and the index lists only real encoders
    assert main(ingest(docs, root, "--encoder", "bm25", "--encoder", "hash")) == 0
    capsys.readouterr()
    assert main(["info", "--index", str(root)]) == 0
    out = capsys.readouterr().out
    assert "encoder  bm25" in out and "encoder  hash" in out and "minlm" not in out
    assert main(["search", "barometer", "--index", str(root), "-k", "1"]) == 0
    assert "a.md" in capsys.readouterr().out


def test_an_encoder_that_fails_to_load_writes_nothing(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that passes the check but whose model cannot load: the run fails at the first
    batch, before the configuration (or a new folder) is written."""
    from rag.encoders.registry import REGISTRY, EncoderSpec

    def broken(device: str = "cpu") -> None:
        raise RuntimeError("the model files are damaged")

    spec = EncoderSpec("broken", "dense", "-", 4, "test", broken, (), lambda: "-")
    monkeypatch.setitem(REGISTRY, "broken", spec)
    root = tmp_path / "idx"
    assert main(ingest(docs, tmp_path / "new", "--encoder", "broken", "--store", "memory")) == 2
    assert not (tmp_path / "new").exists()
    assert main(ingest(docs, root, "--encoder", "bm25", "--store", "memory")) == 0
    before = snapshot(root)
    assert main(ingest(docs, root, "--encoder", "broken")) == 2
    assert "damaged" in capsys.readouterr().err
    assert snapshot(root) == before
    assert Index(root).config.names() == ["bm25"]


def test_the_python_api_checks_names_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "api"
    with pytest.raises(UnknownNameError, match="did you mean 'minilm'") as info:
        Index.create(root, encoders=["minlm"])
    assert "bm25" in str(info.value) and "minilm" in info.value.choices
    with pytest.raises(ValueError, match="did you mean 'recursive'"):
        Index.create(root, encoders=["bm25"], chunker="recursiv")
    with pytest.raises(ValueError, match="did you mean 'memory'"):
        Index.create(root, encoders=["bm25"], store="memori")
    assert not root.exists()


def test_a_rebuild_with_a_typo_keeps_the_index(docs: Path, tmp_path: Path) -> None:
    root = tmp_path / "idx"
    assert main(ingest(docs, root, "--encoder", "bm25", "--store", "memory")) == 0
    before = snapshot(root)
    with pytest.raises(UnknownNameError):
        Index.create(root, encoders=["bm2"], store="memory", rebuild=True)
    assert snapshot(root) == before  # checked before the folder was cleared


def test_search_and_ask_names_are_checked(
    docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "idx"
    assert main(ingest(docs, root, "--encoder", "bm25", "--store", "memory")) == 0
    err = parse_failure(["search", "q", "--index", str(root), "--fusion", "rff"], capsys)
    assert "did you mean 'rrf'?" in err
    err = parse_failure(["ask", "q", "--index", str(root), "--metric", "self_certanty"], capsys)
    assert "did you mean 'self_certainty'?" in err
    err = parse_failure(["ask", "q", "--index", str(root), "--strategy", "vanila"], capsys)
    assert "did you mean 'vanilla'?" in err
    assert main(["search", "q", "--index", str(root), "--encoder", "bm2"]) == 2
    assert "did you mean 'bm25'?" in capsys.readouterr().err
