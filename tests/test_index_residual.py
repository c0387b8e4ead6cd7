"""Residual scoring built into an index: ``sim(q, s) + alpha * sim(q, c)`` stored at ingest.

The stored vector is ``[v / m, sqrt(1 - |v / m|^2)]`` (``v = s + alpha * c``, ``m = 1 + alpha``),
unit length for cosine stores, and searched with ``[q, 0]``: it ranks chunks exactly as the
``rag eval --residual`` rows score them (``residual_vectors`` in an exact store, plain query).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from connectors.directory import load_directory
from rag.cli import main
from rag.encoders.situated import DEFAULT_ALPHA, get_situated, residual_vectors
from rag.index import EncoderEntry, Index, IndexConfig, IndexConfigError
from rag.index.folder import residual_store_vectors
from rag.stores.memory import MemoryStore
from rag.types import Chunk
from tests.fakes import HashEncoder, register_hash_encoder

DOCS = {
    "alpha.md": "# Alpha reactor\n\nThe loop cools itself with liquid sodium.\n\n"
    "## Safety valve\n\nA passive valve shuts the loop when the pressure rises.\n",
    "beta.md": "# Penguins\n\nThey live in the southern hemisphere and eat krill.\n\n"
    "## Sodium\n\nSalt water holds sodium; penguins drink it.\n",
    "gamma.md": "# Gamma rays\n\nPhotons of very high energy emitted by nuclei.\n",
}
QUERIES = ["sodium loop", "penguins krill", "safety valve pressure", "alpha reactor sodium"]


@pytest.fixture
def hash_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HashEncoder registered as dense encoder "hash", for one test."""
    register_hash_encoder(monkeypatch)


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def built(tmp_path: Path, store: str = "memory", alpha: float = 0.5) -> Index:
    index = Index.create(tmp_path / "idx", ["hash"], store=store, situated="prefix", residual=alpha)
    index.ingest(load_directory(write_docs(tmp_path / "docs")))
    return index


def eval_scores(chunks: list[Chunk], query: str, alpha: float) -> dict[str, float]:
    """What a ``rag eval --residual`` row scores: residual_vectors in an exact store, searched
    with the plain query vector (rag/eval/systems.py)."""
    situated = get_situated("prefix", HashEncoder())
    found = situated.embed_chunks(chunks, chunk_vectors=True)
    store = MemoryStore()
    store.add(chunks, residual_vectors(found.situated, found.chunk, alpha))
    hits = store.search(situated.embed_query(query), k=len(chunks))
    return {chunk.id: score for chunk, score in hits}


def test_the_index_stores_unit_residual_vectors(tmp_path: Path, hash_registered: None) -> None:
    index = built(tmp_path, alpha=0.5)
    store = index.store("hash").store  # the store itself (the index's view writes no text)
    assert isinstance(store, MemoryStore)
    stored = store._vectors[: store.count()]  # the exact store's matrix, row i = _chunks[i]
    whole = {c.id: c for c in index.all_chunks()}
    chunks = [whole[c.id] for c in store._chunks]
    assert len(chunks) == len(list(index.all_chunks())) >= 4

    found = get_situated("prefix", HashEncoder()).embed_chunks(chunks, chunk_vectors=True)
    assert not np.allclose(found.situated, found.chunk)  # the prefix changes the vectors
    combined = found.situated + 0.5 * found.chunk
    assert stored.shape == (len(chunks), HashEncoder.dim + 1)
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(stored[:, :-1], combined / 1.5, atol=1e-6)
    np.testing.assert_allclose(stored, residual_store_vectors(found.situated, found.chunk, 0.5))
    # same direction as s + alpha * c within the first coordinates
    cosine = np.einsum("ij,ij->i", stored[:, :-1], combined)
    cosine /= np.linalg.norm(stored[:, :-1], axis=1) * np.linalg.norm(combined, axis=1)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-6)


@pytest.mark.parametrize("store", ["memory", "chroma"])
def test_search_ranks_as_the_eval_residual_rows(
    tmp_path: Path, hash_registered: None, store: str
) -> None:
    alpha = 0.5
    index = built(tmp_path, store=store, alpha=alpha)
    chunks = list(index.all_chunks())
    for query in QUERIES:
        expected = eval_scores(chunks, query, alpha)
        hits = index.search(query, k=len(chunks))
        assert sorted(h.chunk.id for h in hits) == sorted(expected)
        # each score is the eval score over 1 + alpha, so the order is the eval order
        got = [h.score for h in hits]
        want = [expected[h.chunk.id] / (1 + alpha) for h in hits]
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert all(a >= b - 1e-6 for a, b in zip(want, want[1:], strict=False))
        best = max(expected.values())
        assert expected[hits[0].chunk.id] == pytest.approx(best, abs=1e-6)


def test_renormalising_s_plus_alpha_c_would_change_the_ranking() -> None:
    """Why the stored vector is not (s + alpha c) / |s + alpha c|: that divides each chunk's
    score by its own norm. Chunk 0 agrees with the query in context and alone; chunk 1's two
    vectors disagree, so its short norm lifts it above chunk 0 after renormalising."""
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    s = np.array([[0.9, 0.436, 0.0], [0.8, 0.0, 0.6]], dtype=np.float32)
    c = np.array([[0.9, 0.436, 0.0], [0.0, -0.6, -0.8]], dtype=np.float32)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    residual = s @ q + 0.5 * (c @ q)
    v = residual_vectors(s, c, 0.5)
    renormalised = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ q
    stored = residual_store_vectors(s, c, 0.5) @ np.append(q, 0.0).astype(np.float32)
    assert np.argsort(-residual).tolist() == [0, 1]
    assert np.argsort(-renormalised).tolist() == [1, 0]
    assert np.argsort(-stored).tolist() == [0, 1]
    np.testing.assert_allclose(stored, residual / 1.5, atol=1e-6)


def test_residual_round_trips_and_old_configs_read_none(
    tmp_path: Path, hash_registered: None
) -> None:
    index = built(tmp_path, alpha=0.25)
    saved = json.loads((index.root / "index.json").read_text("utf-8"))
    assert saved["encoders"] == [
        {"name": "hash", "kind": "dense", "situated": "prefix", "residual": 0.25}
    ]
    assert IndexConfig.from_json(saved).to_json() == saved
    assert Index(index.root).config.entry("hash").residual == 0.25
    assert Index(index.root).info()["encoders"][0]["residual"] == 0.25
    old = {**saved, "encoders": [{"name": "hash", "kind": "dense", "situated": "prefix"}]}
    assert IndexConfig.from_json(old).entry("hash").residual is None


def test_reopening_with_another_alpha_is_an_error(tmp_path: Path, hash_registered: None) -> None:
    root = built(tmp_path, alpha=0.5).root
    before = (root / "index.json").read_text("utf-8")
    with pytest.raises(IndexConfigError, match=r"residual=0\.5; residual=0\.25 was requested"):
        Index.create(root, ["hash"], store="memory", situated="prefix", residual=0.25)
    with pytest.raises(IndexConfigError, match=r"residual=0\.5; residual=None was requested"):
        Index.create(root, ["hash"], store="memory", situated="prefix")
    assert (root / "index.json").read_text("utf-8") == before
    Index.create(root, ["hash"], store="memory", situated="prefix", residual=0.5)  # same: fine
    index = Index.create(root, ["hash"], store="memory", situated="prefix", rebuild=True)
    assert index.config.entry("hash").residual is None


def test_residual_needs_a_dense_situated_entry(hash_registered: None) -> None:
    with pytest.raises(ValueError, match="residual of plain is the plain vector"):
        EncoderEntry("hash", residual=0.5)
    with pytest.raises(ValueError, match="needs a dense encoder"):
        EncoderEntry("bm25", kind="lexical", situated="prefix", residual=0.5)
    with pytest.raises(ValueError, match="alpha"):
        EncoderEntry("hash", situated="prefix", residual=-1.0)
    assert EncoderEntry("hash", situated="late", residual=1).residual == 1.0


def test_cli_ingest_residual_end_to_end(
    tmp_path: Path, hash_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, root = write_docs(tmp_path / "docs"), tmp_path / "idx"
    args = ["ingest", str(docs), "--index", str(root), "--store", "memory", "--no-progress"]
    args += ["--encoder", "hash", "--situated", "prefix"]
    assert main([*args, "--residual"]) == 0  # the flag alone means SitEmb's alpha
    entry = Index(root).config.entry("hash")
    assert (entry.situated, entry.residual) == ("prefix", DEFAULT_ALPHA)
    capsys.readouterr()

    assert main(["search", "penguins krill", "--index", str(root), "-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    chunks = list(Index(root).all_chunks())
    expected = eval_scores(chunks, "penguins krill", DEFAULT_ALPHA)
    top = max(expected, key=lambda i: expected[i])
    assert rows[0]["source"].endswith("beta.md")
    assert rows[0]["score"] == pytest.approx(expected[top] / (1 + DEFAULT_ALPHA), abs=1e-5)

    assert main(["info", "--index", str(root)]) == 0
    assert "situated=prefix, residual=0.5" in capsys.readouterr().out

    assert main([*args, "--residual", "0.5"]) == 0  # same settings reopen it
    assert main([*args, "--residual", "0.25"]) == 2
    err = capsys.readouterr().err
    assert "residual=0.5" in err and "residual=0.25" in err and "--rebuild" in err
    assert main([*args, "--residual", "0.25", "--rebuild"]) == 0
    assert Index(root).config.entry("hash").residual == 0.25


def test_cli_residual_with_plain_is_an_error(
    tmp_path: Path, hash_registered: None, capsys: pytest.CaptureFixture[str]
) -> None:
    docs, root = write_docs(tmp_path / "docs"), tmp_path / "idx"
    args = ["ingest", str(docs), "--index", str(root), "--store", "memory", "--no-progress"]
    assert main([*args, "--encoder", "hash", "--residual"]) == 2
    err = capsys.readouterr().err
    assert "--residual needs a --situated mode other than plain" in err
    assert not (root / "index.json").exists()
    assert main([*args, "--encoder", "hash", "--situated", "plain", "--residual", "1"]) == 2


def test_cli_default_alpha_is_the_library_one() -> None:
    from rag.commands import ingest

    assert ingest.DEFAULT_ALPHA == DEFAULT_ALPHA


def test_lexical_encoders_beside_a_residual_one_stay_plain(
    tmp_path: Path, hash_registered: None
) -> None:
    index = Index.create(
        tmp_path / "idx", ["hash", "bm25"], store="memory", situated="prefix", residual=0.5
    )
    assert [(e.situated, e.residual) for e in index.config.encoders] == [
        ("prefix", 0.5),
        ("plain", None),
    ]
    index.ingest(load_directory(write_docs(tmp_path / "docs")))
    hits = index.search("penguins krill", k=3)  # both fused
    assert hits[0].chunk.source.endswith("beta.md") and set(hits[0].components) == {
        "hash",
        "bm25",
    }
