"""Hit.relevance: a [0, 1] score fitted per index from pseudo-queries, one scale for all queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import register_hash_encoder

from rag.index import EncoderEntry, Index, IndexConfig
from rag.retrieval.relevance import (
    Background,
    Logistic,
    RelevanceModel,
    above,
    fit_monotone,
    fit_relevance,
)
from rag.types import Chunk, Hit, SourceScore

WORDS = [f"w{i}" for i in range(300)]


def corpus(n: int = 40, seed: int = 0) -> dict[str, str]:
    """``n`` documents of three sentences of random words (distinct enough to retrieve)."""
    rng = np.random.default_rng(seed)
    docs = {}
    for d in range(n):
        sentences = [" ".join(rng.choice(WORDS, 8)).capitalize() + "." for _ in range(3)]
        docs[f"d{d:02d}.txt"] = " ".join(sentences)
    return docs


def build(root: Path, docs: dict[str, str]) -> Index:
    from connectors.directory import load_directory

    folder = root / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    config = IndexConfig(
        encoders=[EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")], store="memory"
    )
    index = Index(root / "idx", config)
    index.ingest(load_directory(folder))
    return index


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    register_hash_encoder(monkeypatch)
    return build(tmp_path, corpus())


def model() -> RelevanceModel:
    """A hand-made model over a dense and a lexical encoder."""
    return RelevanceModel(
        background={"dense": Background(0.3, 0.05, 0.25), "bm25": Background(4.0, 1.5, 2.0)},
        fused=Logistic({"query": 0.4, "index": 0.2}, -4.0),
        single={"bm25": Logistic({"index": 0.8}, -3.0)},
        num_queries=10,
    )


def chunk(name: str) -> Chunk:
    return Chunk(id=name, doc_id=name, text=name, start=0, end=len(name))


def fused_hit(name: str, **scores: float) -> Hit:
    components = {n: SourceScore(s, 1) for n, s in scores.items()}
    return Hit(chunk=chunk(name), score=0.0, rank=1, source="fusion:default", components=components)


def test_index_search_fills_relevance_in_unit_interval(index: Index) -> None:
    for query in ["w1 w2 w3", "w17 w200", "nothing like this here"]:
        hits = index.search(query, k=10)
        assert hits
        assert all(h.relevance is not None and 0.0 <= h.relevance <= 1.0 for h in hits)
    single = index.retriever("bm25").retrieve("w1 w2 w3", k=5)
    assert all(h.relevance is not None and 0.0 <= h.relevance <= 1.0 for h in single)


def test_relevance_is_monotone_in_each_encoders_raw_score() -> None:
    m = model()
    grid = np.linspace(0.0, 1.0, 21)
    for other in (0.1, 0.3, 0.6):
        dense = [m.fused_relevance({"dense": s, "bm25": other * 10}) for s in grid]
        lexical = [m.fused_relevance({"dense": other, "bm25": s * 10}) for s in grid]
        assert np.all(np.diff(dense) >= 0) and dense[-1] > dense[0]
        assert np.all(np.diff(lexical) >= 0) and lexical[-1] > lexical[0]
    single = [m.single_relevance("bm25", s) for s in grid * 10]
    assert np.all(np.diff(single) > 0)


def test_fitted_weights_are_never_negative() -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(50), np.zeros(200)].astype(np.int64)
    good = rng.normal(size=250) + 3 * y  # separates
    bad = rng.normal(size=250) - 2 * y  # anti-correlated: must get weight 0, not < 0
    fit = fit_monotone(np.c_[good, bad], y, ["good", "bad"])
    assert fit.weights["good"] > 0 and fit.weights["bad"] == 0.0


def test_same_raw_scores_give_the_same_relevance_in_different_queries() -> None:
    m = model()
    # One encoder alone: the relevance is a function of the raw score, whatever the query.
    a = Hit(chunk=chunk("a"), score=7.5, rank=1, source="bm25")
    b = Hit(chunk=chunk("b"), score=7.5, rank=4, source="bm25")
    assert m.apply([a])[0].relevance == m.apply([b])[0].relevance
    # Fused: the same scores over the same background give the same relevance, however the
    # queries' other top hits (ranks 1-5) differ (a z-score over all candidates moves).
    tail = [
        Hit(chunk=chunk(f"t{i}"), score=3.0 + 0.01 * i, rank=20, source="bm25") for i in range(40)
    ]
    dense_tail = [Hit(chunk=chunk(f"t{i}"), score=0.2, rank=20, source="dense") for i in range(40)]

    def runs(top: list[float]) -> dict[str, list[Hit]]:
        head = [Hit(chunk=chunk(f"h{s}"), score=s, rank=1, source="bm25") for s in top]
        return {"bm25": head + tail, "dense": dense_tail}

    hit = fused_hit("x", bm25=9.0, dense=0.4)
    first = m.apply([hit], runs([30.0, 25.0, 9.0, 6.0, 5.0]))[0].relevance
    second = m.apply([hit], runs([9.0, 8.5, 8.0, 7.0, 6.5]))[0].relevance
    assert first == pytest.approx(second)


def test_a_strong_match_found_only_by_bm25_gets_high_relevance(index: Index) -> None:
    from rag.index.relevance import relevance_model

    fitted = relevance_model(index)
    assert fitted is not None
    bg = fitted.background["bm25"]
    lone = fused_hit("lone", bm25=bg.mean + 40 * bg.std)  # missing from the dense list
    weak = fused_hit("weak", bm25=bg.mean)
    high, low = fitted.apply([lone, weak])
    assert high.relevance is not None and high.relevance > 0.9
    assert low.relevance is not None and low.relevance < high.relevance


def test_a_verbatim_sentence_is_relevant_and_noise_is_not(index: Index) -> None:
    docs = corpus()
    sentence = docs["d07.txt"].split(". ")[1]
    top = index.search(sentence, k=5)[0]
    assert top.chunk.doc_id.endswith("d07.txt") and top.relevance is not None
    assert top.relevance > 0.5
    assert index.search("zebra quantum marmalade", k=5, min_score=0.5) == []


def test_a_filter_does_not_change_a_hits_relevance(index: Index) -> None:
    """A filtered candidate list is no sample of the query's background (it holds only the
    chunks the filter kept), so a kept hit is judged against the index's background alone:
    its relevance is what the index's model gives its raw scores, whatever the filter."""
    from rag.index.relevance import relevance_model

    sentence = corpus()["d07.txt"].split(". ")[1]
    fitted = relevance_model(index)
    assert fitted is not None
    for where in ({"source": "*d07.txt"}, {"source": "*d0*.txt"}):
        for hit in index.search(sentence, k=5, where=where):
            scores = {n: c.score for n, c in hit.components.items()}
            assert hit.relevance == pytest.approx(fitted.fused_relevance(scores))
    top = index.search(sentence, k=1, where={"source": "*d07.txt"})[0]
    assert top.chunk.doc_id.endswith("d07.txt") and top.relevance > 0.5


def test_min_score_drops_hits_below_it(index: Index) -> None:
    hits = index.search("w1 w2 w3 w4 w5 w6", k=10)
    values = sorted(h.relevance for h in hits if h.relevance is not None)
    cut = values[len(values) // 2]
    kept = index.search("w1 w2 w3 w4 w5 w6", k=10, min_score=cut)
    assert kept and all(h.relevance is not None and h.relevance >= cut for h in kept)
    assert len(kept) == sum(1 for v in values if v >= cut)
    assert above(hits, None) == hits
    no_relevance = Hit(chunk=chunk("n"), score=1.0, rank=1, source="x")
    assert above([no_relevance], 0.0) == []
    with pytest.raises(ValueError, match="min_score"):
        index.search("w1", k=3, min_score=1.5)


def test_parameters_persist_as_json_and_refit_after_an_ingest(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.relevance as relevance

    index.search("w1 w2", k=3)
    path = index.root / relevance.FILE
    saved = json.loads(path.read_text("utf-8"))  # plain JSON, no pickle
    assert saved["format"] == "rag.relevance" and set(saved["background"]) == {"hash", "bm25"}
    assert RelevanceModel.from_json(saved).to_json() == saved

    fits: list[str] = []
    real_fit = relevance.fit_index

    def counting_fit(idx: Index, state: str = "") -> RelevanceModel | None:
        fits.append(state)
        return real_fit(idx, state)

    monkeypatch.setattr(relevance, "fit_index", counting_fit)
    reopened = Index(index.root)
    reopened.search("w1 w2", k=3)
    assert fits == []  # read from relevance.json

    from connectors.directory import load_directory

    extra = index.root.parent / "docs" / "new.txt"
    extra.write_text("Zebra quantum marmalade sings loudly. " * 3, encoding="utf-8")
    reopened.ingest(load_directory(extra.parent))
    reopened.search("w1 w2", k=3)
    assert len(fits) == 1 and fits[0] != saved["state"]
    assert json.loads(path.read_text("utf-8"))["state"] == fits[0]
    reopened.search("w3", k=3)
    assert len(fits) == 1  # cached until the content changes again


def test_fit_needs_a_background() -> None:
    assert fit_relevance({"bm25": [{"a": 1.0}]}, ["a"]) is None
    assert fit_relevance({"bm25": []}, []) is None


def test_cli_prints_relevance_and_cuts_on_min_score(
    index: Index, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    assert main(["search", "w1 w2 w3", "--index", str(index.root), "--json", "-k", "3"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(0.0 <= r["relevance"] <= 1.0 for r in rows)
    assert main(["search", "w1 w2 w3", "--index", str(index.root), "-k", "3"]) == 0
    assert "relevance" in capsys.readouterr().out
    args = ["search", "zebra quantum", "--index", str(index.root), "--min-score", "0.99"]
    assert main(args) == 0
    assert "no results" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["search", "x", "--index", str(index.root), "--min-score", "2"])


def test_a_constant_background_fits_without_error() -> None:
    # A tiny index: every chunk but the source scores the same (no spread to measure against).
    runs = {
        "bm25": [{f"c{q}": 5.0, **{f"c{i}": 1.0 for i in range(12) if i != q}} for q in range(12)]
    }
    fitted = fit_relevance(runs, [f"c{q}" for q in range(12)])
    assert fitted is not None
    strong = fitted.single_relevance("bm25", 5.0)
    weak = fitted.single_relevance("bm25", 1.0)
    assert strong is not None and weak is not None and 0.0 <= weak < strong <= 1.0
