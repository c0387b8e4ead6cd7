"""The fusion benchmark end to end on a toy BEIR set: one run per encoder, per fusion and per
peer, learned weights from a train split, latency fields, and the embedding cache."""

from __future__ import annotations

import pytest

from rag.eval.beir import BeirDataset
from rag.eval.fusion_bench import FusionBenchConfig, evaluate_fusion
from rag.eval.runner import EvalConfig
from tests.fakes import HashEncoder

pytestmark = pytest.mark.slow  # the peers import langchain-classic and llama_index


TOPICS = ["volcano lava ash", "honey bees hive", "green tea leaves", "iron rust oxygen"]


def toy(split: str, queries: dict[str, str]) -> BeirDataset:
    corpus = {
        f"d{i}-{j}": (f"title {i}", f"{TOPICS[i]} note {j} words filler {j * 7}")
        for i in range(4)
        for j in range(3)
    }
    qrels = {q: {f"d{q[1]}-0": 1, f"d{q[1]}-1": 1} for q in queries}
    return BeirDataset("toy", corpus, queries, qrels, split)


def test_runs_for_encoders_fusions_peers_and_optimized(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RAG_EVAL_CACHE", str(tmp_path / "cache"))
    test = toy("test", {"q0": "lava from a volcano", "q1": "where do bees live", "q3": "rust"})
    train = toy("train", {"q0": "volcanic ash", "q2": "tea", "q3": "oxygen and iron"})
    fusions = ("default", "rrf", "combsum-zscore@corpus", "mixture@calibration")
    report = evaluate_fusion(
        test,
        ["hash", "bm25"],
        EvalConfig(k=5),
        FusionBenchConfig(fusions=fusions, peers=True, train=train, latency_queries=2),
        encoders={"hash": HashEncoder()},
    )
    runs = {r["name"]: r for r in report["runs"]}
    optimized = runs["fusion:optimized"]["optimize"]
    if optimized["baseline"]["kept_baseline"]:  # the grid's best is reported beside it
        assert (
            runs.pop("fusion:optimized-best-of-grid")["fusion"]
            == (optimized["baseline"]["best_of_grid"])
        )
    assert list(runs) == [
        "hash",
        "bm25",
        "fusion:default",
        "fusion:rrf",
        "fusion:combsum-zscore@corpus",
        "fusion:mixture@calibration",
        "fusion:optimized",
        "peer:langchain-ensemble",
        "peer:llamaindex-reciprocal_rerank",
        "peer:llamaindex-relative_score",
        "peer:llamaindex-dist_based_score",
    ]
    for name, run in runs.items():
        assert 0.0 <= run["ndcg@10"] <= 1.0 and run["num_queries"] == 3
        if name != "fusion:combsum-zscore@corpus":  # no live retriever has corpus statistics
            assert run["p95_ms"] >= run["p50_ms"] > 0 and run["latency_queries"] == 2
    assert runs["fusion:default"]["fusion"]["stats"] == "background"
    assert 0 < runs["fusion:rrf"]["fusion_p50_ms"] <= runs["fusion:rrf"]["fusion_p95_ms"]
    assert optimized["train_split"] == "train" and optimized["train_queries"] == 3
    assert report["calibration"]["num_queries"] > 0
    assert not (tmp_path / "cache").exists()  # encoders passed in are not cached, only models
    # every topic is separable: the best fusion finds the two relevant documents
    assert runs["fusion:default"]["recall@100"] == 1.0


def test_fusion_needs_two_encoders() -> None:
    with pytest.raises(ValueError, match="at least two"):
        evaluate_fusion(toy("test", {"q0": "lava"}), ["bm25"], EvalConfig(k=5))


def write_beir(folder, dataset: BeirDataset) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": d, "title": t, "text": x}) + "\n"
            for d, (t, x) in dataset.corpus.items()
        )
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in dataset.queries.items())
    )
    (folder / "qrels").mkdir(exist_ok=True)
    lines = [f"{q}\t{d}\t{g}" for q, docs in dataset.qrels.items() for d, g in docs.items()]
    (folder / "qrels" / f"{dataset.split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(lines) + "\n"
    )


def test_cli_fusions_with_latency_and_a_clear_error_without_train_split(
    tmp_path, monkeypatch, capsys
) -> None:
    import json

    from rag.cli import main

    monkeypatch.setenv("RAG_EVAL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "toy"
    write_beir(folder, toy("test", {"q0": "lava from a volcano", "q1": "bees", "q3": "rust"}))
    out = tmp_path / "out.json"
    args = ["eval", str(folder), "--encoder", "bm25", "--encoder", "wordllama", "--no-progress"]
    code = main(
        [
            *args,
            "--fusion",
            "default",
            "--fusion",
            "rrf",
            "--latency-queries",
            "2",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["runs"]]
    assert names == ["bm25", "wordllama", "fusion:default", "fusion:rrf"]
    assert all("p50_ms" in r for r in report["runs"])
    assert "fusion p50 ms" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="has no qrels/train.tsv"):
        main([*args, "--optimize"])
