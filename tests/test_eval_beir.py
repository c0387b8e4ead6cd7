"""The BEIR loader: what it keeps, and the errors a user sees for a broken folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.eval.beir import available_splits, load_beir


def write_beir(
    root: Path,
    corpus: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, dict[str, int]]],
) -> Path:
    """A BEIR folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv for each split."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in corpus.items()
        ),
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()),
        encoding="utf-8",
    )
    (root / "qrels").mkdir(exist_ok=True)
    for split, judged in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t{s}" for q, docs in judged.items() for d, s in docs.items()]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_beir(
        tmp_path / "tiny",
        corpus={"d1": ("Title one", "Text one."), "d 2": ("", "Text two."), "d3": ("T3", "")},
        queries={"q3": "third", "q1": "first", "q2": "second"},
        qrels={"test": {"q1": {"d1": 2, "d 2": 0}, "q3": {"d3": 1}}, "dev": {"q2": {"d1": 1}}},
    )


def test_loads_corpus_and_keeps_only_judged_queries_in_file_order(folder: Path):
    ds = load_beir(folder, "test")
    assert ds.name == "tiny" and ds.split == "test"
    assert ds.corpus == {
        "d1": ("Title one", "Text one."),
        "d 2": ("", "Text two."),
        "d3": ("T3", ""),
    }
    assert list(ds.queries) == ["q3", "q1"]  # order of queries.jsonl; q2 is judged only in dev
    assert ds.qrels == {"q3": {"d3": 1}, "q1": {"d1": 2, "d 2": 0}}
    assert list(load_beir(folder, "dev").queries) == ["q2"]


def test_limit_queries_keeps_the_first_ones(folder: Path):
    ds = load_beir(folder, "test").limit_queries(1)
    assert list(ds.queries) == ["q3"] and list(ds.qrels) == ["q3"]
    assert len(ds.corpus) == 3
    with pytest.raises(ValueError, match="at least 1"):
        load_beir(folder).limit_queries(0)


def test_missing_split_names_the_file_and_lists_available_splits(folder: Path):
    assert available_splits(folder) == ["dev", "test"]
    with pytest.raises(
        FileNotFoundError, match=r"split 'train'.*train\.tsv.*available splits: dev, test"
    ):
        load_beir(folder, "train")


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file_is_named(folder: Path, missing: str):
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_beir(folder)


def test_missing_folder_and_missing_qrels_folder(tmp_path: Path, folder: Path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_beir(tmp_path / "nope")
    for f in (folder / "qrels").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match="available splits: none"):
        load_beir(folder)


def test_qrels_naming_an_unknown_query_is_an_error(folder: Path):
    with (folder / "qrels" / "test.tsv").open("a", encoding="utf-8") as f:
        f.write("q404\td1\t1\n")
    with pytest.raises(ValueError, match="q404"):
        load_beir(folder)


def test_bad_qrels_header_and_bad_json_line(folder: Path):
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        load_beir(folder)
    (folder / "corpus.jsonl").write_text('{"_id": "d1"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2"):
        load_beir(folder, "dev")


def test_real_scifact_test_split(shared_data: Path):
    ds = load_beir(shared_data / "scifact", "test")
    assert ds.name == "scifact"
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 300
    assert sum(len(d) for d in ds.qrels.values()) == 339
