"""``rag eval --plot`` and ``rag eval-qa --plot`` write PNG charts beside their JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from tests.fakes import register_hash_encoder
from tests.test_eval_qa import parse
from tests.test_eval_qa import qa_dir as qa_dir  # noqa: F401 - the tiny QA set fixture
from tests.test_eval_runner import CORPUS, QRELS, QUERIES, write_beir

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def test_eval_plot_writes_a_png_beside_the_json(tmp_path: Path, monkeypatch) -> None:
    register_hash_encoder(monkeypatch)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))  # embeddings cached in tmp_path
    data = write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS)
    out, png = tmp_path / "eval.json", tmp_path / "charts" / "eval.png"
    argv = ["eval", str(data), "--encoder", "bm25", "--encoder", "hash", "--fusion", "rrf"]
    argv += ["--peers", "--latency-queries", "0", "--json", str(out), "--plot", str(png)]
    assert main([*argv, "--no-progress"]) == 0
    assert png.read_bytes().startswith(PNG)
    names = [r["name"] for r in json.loads(out.read_text())["runs"]]
    assert names[:3] == ["bm25", "hash", "fusion:rrf"] and any(n.startswith("peer:") for n in names)


def test_eval_qa_plot_writes_a_png(qa_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip("bm25s")
    png = tmp_path / "qa.png"
    args = parse(
        ["eval-qa", str(qa_dir), "--encoder", "bm25", "--generator", "echo"]
        + ["--metric", "self_certainty", "--plot", str(png), "--no-progress", "--no-cache"]
    )
    assert args.func(args) == 0
    assert png.read_bytes().startswith(PNG)


def test_figures_from_reports_without_optional_fields() -> None:
    from rag.eval.plot import eval_figure, qa_figure, run_kind

    assert [run_kind(n) for n in ("minilm", "fusion:rrf", "peer:langchain")] == [
        "encoder",
        "fusion",
        "peer",
    ]
    fig = eval_figure({"runs": [{"name": "a", "ndcg@10": 0.5}, {"name": "b", "ndcg@10": None}]})
    assert len(fig.axes) == 1  # only the metric the runs have
    nan = float("nan")
    fig = qa_figure({"runs": [{"name": "vanilla-llm", "accuracy": 0.0, "auroc": nan}]})
    assert len(fig.axes) == 1  # no records: no strip of confidences
