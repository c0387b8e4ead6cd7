"""Situated encoders in the benchmark runner and ``rag eval``: ``--situated``, ``--residual``,
``--chunking``, and the encode time of each mode relative to plain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.cli import main
from rag.eval.beir import BeirDataset
from rag.eval.runner import EvalConfig, chunked_units, evaluate_encoders, make_chunker
from rag.eval.systems import situated_systems
from tests.fakes import HashEncoder, register_hash_encoder

# The two documents share their first sentence word for word: only the title (context) tells
# which volcano-or-geyser it is about, so plain chunks cannot separate them.
CORPUS = {
    "d1": ("Volcano facts", "It erupts often. Ash covers the fields."),
    "d2": ("Geysers", "It erupts often. Steam rises high."),
}
QUERIES = {"q1": "geysers erupts often", "q2": "volcano erupts often"}
QRELS = {"q1": {"d2": 1}, "q2": {"d1": 1}}


def dataset() -> BeirDataset:
    return BeirDataset("t", dict(CORPUS), dict(QUERIES), {q: dict(d) for q, d in QRELS.items()})


def write_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in CORPUS.items()
        )
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES.items())
    )
    (root / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"] + [
        f"{q}\t{d}\t{s}" for q, docs in QRELS.items() for d, s in docs.items()
    ]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_context_separates_chunks_that_plain_embedding_cannot() -> None:
    config = EvalConfig(
        protocol="chunked", chunk_tokens=8, situated=("plain", "prefix", "sitemb"), residual=0.5
    )
    report = evaluate_encoders(dataset(), ["hash"], config, encoders={"hash": HashEncoder()})
    runs = {r["name"]: r for r in report["runs"]}
    assert list(runs) == [
        "hash+plain",
        "hash+prefix",
        "hash+sitemb",
        "hash+prefix+residual0.5",
        "hash+sitemb+residual0.5",
    ]
    assert runs["hash+plain"]["ndcg@10"] < 1.0  # identical chunks: one query must lose
    for name in ("hash+prefix", "hash+sitemb", "hash+prefix+residual0.5"):
        assert runs[name]["ndcg@10"] == pytest.approx(1.0)
    assert runs["hash+plain"]["encode_x_plain"] == pytest.approx(1.0)
    assert all(r["encode_x_plain"] > 0 for r in runs.values())
    assert report["situated"] == ["plain", "prefix", "sitemb"] and report["residual"] == 0.5


def test_residual_store_scores_situated_plus_alpha_chunk() -> None:
    from rag.encoders.situated import get_situated

    units = chunked_units(dataset(), make_chunker(8))
    base = HashEncoder()
    config = EvalConfig(protocol="chunked", chunk_tokens=8, situated=("prefix",), residual=0.25)
    prefix, residual = situated_systems("hash", units, config, encoders={"hash": base})
    assert (prefix.name, residual.name) == ("hash+prefix", "hash+prefix+residual0.25")
    hits = residual.retriever.retrieve("geysers erupts often", k=4)
    q = base.embed_queries(["geysers erupts often"])[0]
    s = base.embed_documents(get_situated("prefix", base).texts(units.chunks))
    c = base.embed_documents([ch.text for ch in units.chunks])
    expected = dict(zip([ch.id for ch in units.chunks], s @ q + 0.25 * (c @ q), strict=True))
    np.testing.assert_allclose(
        [h.score for h in hits], [expected[h.chunk.id] for h in hits], rtol=1e-5
    )
    assert hits[0].chunk.doc_id == "d2"
    assert list(residual.ranker.rank("geysers erupts often", k=2)) == ["d2", "d1"]


def test_residual_reuses_the_encoded_vectors_and_counts_their_cost() -> None:
    counter = HashEncoder()
    calls: list[int] = []
    original = counter._embed

    def counting(texts, role, **kw):  # type: ignore[no-untyped-def]
        if role == "document":
            calls.append(len(texts))
        return original(texts, role, **kw)

    counter._embed = counting  # type: ignore[method-assign]
    config = EvalConfig(
        protocol="chunked", chunk_tokens=8, situated=("plain", "prefix"), residual=1
    )
    report = evaluate_encoders(dataset(), ["hash"], config, encoders={"hash": counter})
    assert len(calls) == 2  # plain once, prefix once; the residual run encodes nothing new
    runs = {r["name"]: r for r in report["runs"]}
    cost = runs["hash+prefix"]["encode_seconds"] + runs["hash+plain"]["encode_seconds"]
    assert runs["hash+prefix+residual1"]["encode_seconds"] == pytest.approx(cost)


def test_chunkings_sentence_and_record() -> None:
    ds = BeirDataset(
        "t", {"p": ("Para", "First sentence here. Second one. Third and last.")}, {}, {}
    )
    sentence = chunked_units(ds, make_chunker(64, chunking="sentence"))
    assert sentence.texts == ["First sentence here.", "Second one.", "Third and last."]
    text = ds.corpus["p"][1]
    assert all(c.context == text and c.title == "Para" for c in sentence.chunks or [])
    packed = chunked_units(ds, make_chunker(64))
    assert len(packed) == 1
    record = chunked_units(ds, make_chunker(4, chunking="record"))
    assert record.texts == ["First sentence here. Second one. Third and last."]


def test_situated_options_are_checked_before_any_encoding() -> None:
    with pytest.raises(ValueError, match="chunked protocol"):
        EvalConfig(protocol="whole", situated=("prefix",))
    with pytest.raises(ValueError, match="plain, prefix, sitemb, late"):
        EvalConfig(protocol="chunked", situated=("no-such-mode",))
    with pytest.raises(ValueError, match="other than plain"):
        EvalConfig(protocol="chunked", situated=("plain",), residual=0.5)
    with pytest.raises(ValueError, match="alpha"):
        EvalConfig(protocol="chunked", situated=("prefix",), residual=-1)
    with pytest.raises(ValueError, match="chunking"):
        EvalConfig(protocol="chunked", chunking="paragraph")


@pytest.fixture
def hash_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    register_hash_encoder(monkeypatch)


def test_cli_situated_and_residual_flags(tmp_path: Path, hash_registered: None) -> None:
    data = write_beir(tmp_path / "data")
    out = tmp_path / "situated.json"
    argv = ["eval", str(data), "--encoder", "hash", "--protocol", "chunked", "--chunk-tokens", "8"]
    argv += ["--situated", "plain", "--situated", "prefix", "--json", str(out), "--no-progress"]
    assert main([*argv, "--residual"]) == 0  # the flag alone means SitEmb's alpha, 0.5
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["runs"]]
    assert names == ["hash+plain", "hash+prefix", "hash+prefix+residual0.5"]
    assert report["residual"] == 0.5 and report["chunking"] == "packed"
    assert main([*argv, "--residual", "2"]) == 0
    assert json.loads(out.read_text())["runs"][-1]["name"] == "hash+prefix+residual2"
