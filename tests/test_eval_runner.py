"""The benchmark runner and ``rag eval``: product stores and retrievers, max-over-chunks, fusion
over plain document runs, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.base import Chunker, Encoder
from rag.cli import main
from rag.eval.beir import BeirDataset, load_beir
from rag.eval.runner import (
    EvalConfig,
    SystemRun,
    Units,
    chunked_units,
    evaluate_encoders,
    fuse_runs,
    whole_text,
    whole_units,
)
from rag.eval.systems import encoder_system
from rag.types import Chunk, Document
from tests.fakes import HashEncoder, register_hash_encoder


class PeriodChunker(Chunker):
    """One chunk per '. '-separated sentence, offsets into the document text."""

    def chunk(self, document: Document) -> list[Chunk]:
        chunks, start = [], 0
        text = document.text
        while start < len(text):
            end = text.find(". ", start)
            end = len(text) if end < 0 else end + 1
            piece = text[start:end]
            chunks.append(
                Chunk(
                    id=Chunk.make_id(document.id, start, end, piece),
                    doc_id=document.id,
                    text=piece,
                    start=start,
                    end=end,
                    title=document.title,
                )
            )
            start = end + 1
        return chunks


def write_beir(root: Path, corpus, queries, qrels) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in corpus.items()
        )
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items())
    )
    (root / "qrels").mkdir(exist_ok=True)
    rows = ["query-id\tcorpus-id\tscore"] + [
        f"{q}\t{d}\t{s}" for q, docs in qrels.items() for d, s in docs.items()
    ]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


# Each query's words occur only in its relevant document: a sound retriever ranks it first.
CORPUS = {
    "d1": ("Volcanoes", "Magma rises through the crust. Lava cools into basalt."),
    "d2": ("Glaciers", "Ice sheets flow slowly. Moraines mark their former edges."),
    "d3": ("Deserts", "Dunes migrate with the wind. Oases hold groundwater."),
    "d4": ("Rivers", "Deltas form at the mouth. Meanders cut oxbow lakes."),
}
QUERIES = {"q1": "basalt lava", "q2": "moraines", "q3": "oases groundwater", "qx": "unjudged"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 2}, "q3": {"d3": 1}}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS)


def system(encoder: Encoder, units: Units):
    return encoder_system("hash", units, EvalConfig(), encoders={"hash": encoder})


def test_a_system_is_the_products_retriever_over_a_memory_store():
    from rag.retrieval.store_retriever import StoreRetriever
    from rag.stores.memory import MemoryStore

    ds = BeirDataset("t", {"a": ("", "x y"), "b": ("", "x z"), "c": ("", "w")}, {"q": "x y"}, {})
    units = whole_units(ds)
    built = system(HashEncoder(), units)
    assert isinstance(built.retriever, StoreRetriever)
    assert isinstance(built.retriever.store, MemoryStore)
    assert built.retriever.store.count() == 3 and built.ranker.depth(100) == 3
    # the run is the retriever's hits, as documents: cosine 1, 1/2 (one of two words), 0
    run = built.run(ds, k=10).ranked["q"]
    hits = built.retriever.retrieve("x y", k=3)
    assert list(run) == [h.chunk.doc_id for h in hits] == ["a", "b", "c"]
    assert list(run.values()) == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)


def test_whole_text_follows_beir_title_space_text():
    assert whole_text("Title", "Body.") == "Title Body."
    assert whole_text("", "Body.") == "Body."
    ds = BeirDataset("x", {"d": ("T", "B")}, {}, {})
    units = whole_units(ds)
    assert units.texts == ["T B"]
    (chunk,) = units.chunks  # a real chunk of a real document: its offsets hold
    (doc,) = units.documents
    assert chunk.text == doc.text[chunk.start : chunk.end] and chunk.title == "T"
    assert chunk.id == Chunk.make_id("d", 0, 3, "T B") and chunk.doc_id == "d"


def test_chunked_protocol_max_over_chunks_by_hand():
    # d1 has chunks "alpha beta." and "gamma delta."; d2 one chunk "alpha gamma delta epsilon."
    corpus = {
        "d1": ("Title1", "alpha beta. gamma delta."),
        "d2": ("", "alpha gamma delta epsilon."),
    }
    ds = BeirDataset("hand", corpus, {"q": "gamma delta"}, {"q": {"d1": 1}})
    units = chunked_units(ds, PeriodChunker())
    assert units.texts == ["alpha beta.", "gamma delta.", "alpha gamma delta epsilon."]
    assert units.doc_ids == ["d1", "d1", "d2"] and units.max_per_doc == 2
    assert all("Title1" not in t for t in units.texts)  # the title is context, not chunk text
    built = system(HashEncoder(), units)
    run = built.run(ds, k=10)
    # cosine of the query with each chunk: d1's second chunk equals the query (1.0); the first
    # shares nothing (0.0); d2's chunk shares 2 of 4 words: 2 / (sqrt(2) * 2) = 0.7071
    ranked = run.ranked["q"]
    assert list(ranked) == ["d1", "d2"]
    assert ranked["d1"] == pytest.approx(1.0, abs=1e-6)
    assert ranked["d2"] == pytest.approx(2 / (np.sqrt(2) * 2), abs=1e-6)
    hits = built.retriever.retrieve("gamma delta", k=3)  # the chunks behind it
    assert [h.chunk.text for h in hits] == [
        "gamma delta.",
        "alpha gamma delta epsilon.",
        "alpha beta.",
    ]
    assert [h.rank for h in hits] == [1, 2, 3] and {h.source for h in hits} == {"hash"}
    assert hits[2].score == pytest.approx(0.0, abs=1e-6)


def test_chunked_depth_still_finds_k_documents():
    # 6 documents of 3 identical chunks: top-k documents need k * 3 chunks, not k.
    corpus = {f"d{i}": ("", "x y. x y. x y.") for i in range(6)}
    ds = BeirDataset("dup", corpus, {"q": "x y"}, {"q": {"d5": 1}})
    units = chunked_units(ds, PeriodChunker())
    built = system(HashEncoder(), units)
    assert built.ranker.depth(4) == 12  # 4 documents x their 3 chunks
    run = built.run(ds, k=4)
    assert len(run.ranked["q"]) == 4
    # equal scores everywhere: documents in the store's order (its ties go by insertion)
    assert list(run.ranked["q"]) == ["d0", "d1", "d2", "d3"]


def test_evaluate_encoders_with_a_dense_encoder_object(tiny: Path):
    ds = load_beir(tiny)
    report = evaluate_encoders(ds, ["hash"], EvalConfig(), encoders={"hash": HashEncoder()})
    (row,) = report["runs"]
    assert row["name"] == "hash" and row["num_queries"] == 3
    assert row["ndcg@10"] == pytest.approx(1.0) and row["mrr@10"] == pytest.approx(1.0)
    assert row["recall@100"] == pytest.approx(1.0)
    assert row["seconds"] >= row["query_seconds"] >= 0


def test_fusion_runs_are_named_and_combine_document_lists():
    a = SystemRun("a", {"q": {"d1": 3.0, "d2": 2.0}})
    b = SystemRun("b", {"q": {"d2": 0.9, "d3": 0.8}})
    fused = fuse_runs([a, b], "rrf", k=10)
    assert fused.name == "fusion:rrf"
    # RRF (k=60): d2 = 1/62 + 1/61, d1 = 1/61, d3 = 1/62
    assert list(fused.ranked["q"]) == ["d2", "d1", "d3"]
    assert fused.ranked["q"]["d2"] == pytest.approx(1 / 62 + 1 / 61)


def test_cli_eval_bm25_perfect_run_writes_the_json_schema(tiny: Path, tmp_path: Path, capsys):
    out = tmp_path / "out" / "eval.json"
    code = main(["eval", str(tiny), "--encoder", "bm25", "--json", str(out), "--no-progress"])
    assert code == 0
    report = json.loads(out.read_text())
    assert {"dataset", "split", "protocol", "runs"} <= set(report)
    assert (report["dataset"], report["split"], report["protocol"]) == ("tiny", "test", "whole")
    (row,) = report["runs"]
    assert {"name", "ndcg@10", "recall@100", "seconds"} <= set(row)
    assert row["name"] == "bm25"
    assert row["ndcg@10"] == 1.0 and row["recall@100"] == 1.0
    printed = capsys.readouterr().out
    assert "nDCG@10" in printed and "Recall@100" in printed and "bm25" in printed


@pytest.fixture
def hash_registered(monkeypatch):
    """The HashEncoder registered as dense encoder "hash", for this test only."""
    register_hash_encoder(monkeypatch)


def test_cli_eval_chunked_protocol_with_fusion(tiny: Path, tmp_path: Path, hash_registered):
    out = tmp_path / "chunked.json"
    argv = ["eval", str(tiny), "--encoder", "bm25", "--encoder", "hash", "--fusion", "rrf"]
    argv += ["--protocol", "chunked", "--chunk-tokens", "8", "--json", str(out), "--no-progress"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["protocol"] == "chunked" and report["chunk_tokens"] == 8
    assert report["num_units"] == 8  # 8 tokens hold one of each document's two sentences
    assert [r["name"] for r in report["runs"]] == ["bm25", "hash", "fusion:rrf"]
    assert all(r["ndcg@10"] == pytest.approx(1.0) for r in report["runs"])


def test_real_sentence_chunker_keeps_the_title_out_of_chunk_text():
    from rag.eval.runner import make_chunker

    ds = BeirDataset("t", {"d1": CORPUS["d1"], "d2": CORPUS["d2"]}, {}, {})
    units = chunked_units(ds, make_chunker(8))
    assert units.texts == [
        "Magma rises through the crust.",
        "Lava cools into basalt.",
        "Ice sheets flow slowly.",
        "Moraines mark their former edges.",
    ]
    assert [c.title for c in units.chunks] == ["Volcanoes"] * 2 + ["Glaciers"] * 2
    assert units.documents[0].text == CORPUS["d1"][1]  # the title is not in the document text


def test_cli_eval_limit_queries(tiny: Path, tmp_path: Path):
    out = tmp_path / "limited.json"
    argv = ["eval", str(tiny), "--encoder", "bm25", "--limit-queries", "1", "--json", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    assert json.loads(out.read_text())["runs"][0]["num_queries"] == 1


def test_cli_eval_reports_a_missing_split(tiny: Path, capsys):
    assert main(["eval", str(tiny), "--split", "dev", "--encoder", "bm25"]) == 2
    err = capsys.readouterr().err
    assert "split 'dev'" in err and "available splits: test" in err


def test_fusion_needs_two_encoders(tiny: Path, capsys):
    assert main(["eval", str(tiny), "--encoder", "bm25", "--fusion", "rrf", "--no-progress"]) == 2
    assert "at least two" in capsys.readouterr().err


def test_units_refuse_chunks_of_unknown_documents():
    ds = BeirDataset("x", {"d": ("T", "B")}, {}, {})
    units = whole_units(ds)
    with pytest.raises(ValueError, match="not given"):
        Units(chunks=units.chunks, documents=[])


def test_unknown_fusion_is_refused_before_encoding(tiny: Path, capsys, monkeypatch):
    import rag.eval.runner as runner

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded before checking the fusion name")

    monkeypatch.setattr(runner, "build_systems", no_encoding)
    argv = ["eval", str(tiny), "--encoder", "bm25", "--encoder", "x", "--fusion", "nope"]
    assert main(argv) == 2
    assert "unknown fusion 'nope'" in capsys.readouterr().err
