"""Answer metrics (normalisation, containment, token F1, AUROC) on hand-computed values, and the
eval-qa benchmark end to end on a tiny QA set with a deterministic fake LLM."""

from __future__ import annotations

import argparse
import itertools
import json
import random

import pytest

from rag.eval.qa import auroc, best_over_golds, contains_answer, normalize_answer, token_f1

# -- metrics ------------------------------------------------------------------------------------


def test_normalisation_follows_the_squad_script():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a pear and THE plum.") == "apple pear and plum"
    assert normalize_answer("Paris [1] is it [2, 3].") == "paris is it"


def test_containment_matches_whole_token_runs():
    assert contains_answer("It is in the Ohio River valley.", "Ohio River")
    assert contains_answer("Yes, both are.", "yes")
    assert not contains_answer("No, they are not.", "yes")
    assert not contains_answer("It is not.", "no")  # "no" is not a token of "not"
    assert not contains_answer("River Ohio", "Ohio River")  # order matters
    assert not contains_answer("anything", "the")  # empty after normalisation


def test_token_f1_on_hand_computed_values():
    # pred tokens: ohio river valley (3); gold: ohio river (2); common 2 -> P 2/3, R 1 -> 0.8
    assert token_f1("the Ohio River valley", "Ohio River") == pytest.approx(0.8)
    assert token_f1("Paris", "Paris") == 1.0
    assert token_f1("Lyon", "Paris") == 0.0
    # repeated tokens count once per occurrence in both: common {a:1} -> P 1/2, R 1/1
    assert token_f1("x x", "x") == pytest.approx(2 * 0.5 * 1 / 1.5)
    # yes/no answers score only when they agree (HotpotQA script)
    assert token_f1("no", "yes") == 0.0
    assert token_f1("yes", "yes") == 1.0
    # 5 tokens, 1 shared: P 1/5, R 1 -> 2 * 0.2 / 1.2
    assert token_f1("yes it is in france", "france") == pytest.approx(1 / 3)


def test_best_over_several_golds():
    assert best_over_golds("Robert Connor", ["R. D. W. Connor", "Robert Connor"]) == (True, 1.0)
    with pytest.raises(ValueError):
        best_over_golds("x", [])


def test_auroc_on_hand_computed_values():
    # positives 0.9, 0.7; negatives 0.8, 0.6: pairs won 0.9>0.8, 0.9>0.6, 0.7>0.6 -> 3/4
    assert auroc([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == pytest.approx(0.75)
    assert auroc([3, 2, 1], [True, True, False]) == 1.0
    assert auroc([1, 2, 3], [True, True, False]) == 0.0
    # a tie between a positive and a negative counts one half: (1 + 0.5) / 2
    assert auroc([0.5, 0.5, 0.1], [True, False, False]) == pytest.approx(0.75)
    assert auroc([1.0, 1.0], [True, False]) == 0.5
    assert auroc([1.0, 2.0], [True, True]) != auroc([1.0, 2.0], [True, True])  # NaN: one class
    with pytest.raises(ValueError):
        auroc([1.0], [True, False])


def test_auroc_equals_the_pairwise_definition():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(2, 30)
        scores = [rng.choice([0.1, 0.2, 0.3, rng.random()]) for _ in range(n)]
        labels = [rng.random() < 0.4 for _ in range(n)]
        pos = [s for s, y in zip(scores, labels, strict=True) if y]
        neg = [s for s, y in zip(scores, labels, strict=True) if not y]
        if not pos or not neg:
            continue
        wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
        assert auroc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)))


# -- the benchmark on a tiny QA set ---------------------------------------------------------------

CORPUS = [
    ("France", "France", "The capital of France is Paris, on the Seine."),
    ("Italy", "Italy", "The capital of Italy is Rome, on the Tiber."),
    ("Spain", "Spain", "The capital of Spain is Madrid, on the Manzanares."),
    ("Nile", "Nile", "The Nile flows north through Egypt into the Mediterranean."),
]
QUESTIONS = [
    ("q1", "What is the capital of France?", "Paris"),
    ("q2", "What is the capital of Italy?", "Rome"),
    ("q3", "Into which sea does the Nile flow?", "Mediterranean"),
]


@pytest.fixture
def qa_dir(tmp_path):
    folder = tmp_path / "tinyqa"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as fh:
        for doc_id, title, text in CORPUS:
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as fh:
        for qid, text, _ in QUESTIONS:
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (folder / "answers.jsonl").open("w") as fh:
        for qid, _, answer in QUESTIONS:
            fh.write(json.dumps({"_id": qid, "answer": answer}) + "\n")
    rels = {"q1": "France", "q2": "Italy", "q3": "Nile"}
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in rels.items())
    )
    return folder


def first_source_answer(prompt: str) -> str:
    """A fake reader: the last word of source [1], or "unknown" without sources."""
    for line in prompt.splitlines():
        if line.startswith("[1] "):
            return line.split(",")[0].split()[-1]
    return "unknown"


def test_benchmark_runs_every_strategy_and_scores_them(qa_dir):
    pytest.importorskip("bm25s")
    from rag.encoders.bm25 import BM25Encoder
    from rag.eval.qa_benchmark import QAConfig, build_retrievers, load_qa_dataset, run_benchmark
    from rag.eval.systems import build_store
    from rag.generation import EchoGenerator
    from rag.retrieval.store_retriever import StoreRetriever
    from rag.stores.bm25 import BM25Store

    dataset = load_qa_dataset(qa_dir)
    assert len(dataset.chunks) == 4 and dataset.answers["q1"] == ["Paris"]
    chunk = dataset.chunks[0]  # a real chunk over its record: offsets and context hold
    assert chunk.text == chunk.context and (chunk.start, chunk.end) == (0, len(chunk.text))
    titles = [c.title or "" for c in dataset.chunks]
    encoder = BM25Encoder()
    retrievers = {
        **build_retrievers(dataset.chunks, ["bm25"], cache=False),  # title + text, as shown
        "titles": StoreRetriever(
            encoder, build_store(encoder, dataset.chunks, texts=titles), name="titles"
        ),
    }
    assert isinstance(retrievers["bm25"].store, BM25Store)
    llm = EchoGenerator(first_source_answer, confidence=lambda p: 0.9 if "[1]" in p else 0.3)
    config = QAConfig(encoders=list(retrievers), metrics=["self_certainty", "gini"], k=2)
    result = run_benchmark(dataset, llm, retrievers, config)
    runs = {r["name"]: r for r in result["runs"]}
    assert list(runs) == [
        "vanilla-llm",
        "vanilla-rag:bm25",
        "vanilla-rag:titles",
        "mixture",
        "confident:self_certainty",
        "confident:gini",
        "confident-fast:self_certainty",
        "confident-fast:gini",
    ]
    for row in runs.values():
        assert {"accuracy", "f1", "auroc", "seconds_per_question"} <= set(row)
        assert row["questions"] == 3 and row["seconds_per_question"] >= 0
    assert runs["vanilla-llm"]["accuracy"] == 0.0
    assert runs["vanilla-rag:bm25"]["accuracy"] == 1.0
    assert runs["confident:self_certainty"]["accuracy"] == 1.0
    # the closed-book answers are all wrong: no AUROC; here every RAG answer is right: none
    assert runs["vanilla-llm"]["auroc"] != runs["vanilla-llm"]["auroc"]
    record = result["records"][0]["runs"]
    assert record["confident:gini"]["winner"] in retrievers
    assert len(record["vanilla-rag:bm25"]["steps"]) == 1  # one token: "Paris"
    json.dumps(result)  # JSON-ready


def parse(argv):
    from rag.commands import eval_qa

    parser = argparse.ArgumentParser(prog="rag")
    sub = parser.add_subparsers(dest="command", required=True)
    eval_qa.register(sub)
    return parser.parse_args(argv)


def test_eval_qa_command_writes_named_runs(qa_dir, tmp_path, capsys):
    pytest.importorskip("bm25s")
    out = tmp_path / "qa.json"
    args = parse(
        [
            "eval-qa",
            str(qa_dir),
            "--encoder",
            "bm25",
            "--generator",
            "echo",
            "--metric",
            "self_certainty",
            "--json",
            str(out),
            "--no-progress",
            "--no-cache",
        ]
    )
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["runs"]]
    assert names == [
        "vanilla-llm",
        "vanilla-rag:bm25",
        "mixture",
        "confident:self_certainty",
        "confident-fast:self_certainty",
    ]
    assert data["questions"] == 3
    assert "vanilla-rag:bm25" in capsys.readouterr().out


def test_an_empty_answer_counts_as_the_least_confident():
    from rag.eval.qa_benchmark import summarise

    def run(correct, score):
        scores = {} if score is None else {"gini": score}
        return {
            "correct": correct,
            "f1": float(correct),
            "seconds": 1.0,
            "scores": scores,
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "generations": 1,
        }

    records = [
        {"runs": {"vanilla-rag:x": run(True, 0.9)}},
        {"runs": {"vanilla-rag:x": run(False, 0.5)}},
        {"runs": {"vanilla-rag:x": run(False, None)}},  # empty answer: no token steps
    ]
    (row,) = summarise(records, ["gini"])
    assert row["auroc_by_metric"] == {"gini": 1.0}
    assert row["accuracy"] == pytest.approx(1 / 3) and row["seconds_per_question"] == 1.0


def test_eval_qa_needs_gold_answers(tmp_path):
    from rag.eval.qa_benchmark import load_qa_dataset

    with pytest.raises(FileNotFoundError, match="answers.jsonl"):
        load_qa_dataset(tmp_path)
