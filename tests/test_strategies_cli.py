"""``rag ask`` end to end over a small BM25 index, with the deterministic echo LLM."""

from __future__ import annotations

import argparse
import json

import pytest

from rag.types import Document, Span, sha256_hex

pytest.importorskip("bm25s")

TEXTS = {
    "paris.md": "Paris is the capital of France. It lies on the Seine.",
    "rome.md": "Rome is the capital of Italy. It lies on the Tiber.",
}


@pytest.fixture
def index_dir(tmp_path):
    from rag.index import EncoderEntry, Index, IndexConfig

    config = IndexConfig(encoders=[EncoderEntry("bm25", kind="lexical")], store="memory")
    index = Index(tmp_path / "idx", config)
    docs = [
        Document(
            id=name,
            text=text,
            source=name,
            content_hash=sha256_hex(text),
            title=name.removesuffix(".md").title(),
            spans=[Span(0, len(text), section=("Capitals",))],
        )
        for name, text in TEXTS.items()
    ]
    index.ingest(docs)
    return tmp_path / "idx"


def run_cli(argv):
    from rag.commands import ask

    parser = argparse.ArgumentParser(prog="rag")
    sub = parser.add_subparsers(dest="command", required=True)
    ask.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_ask_prints_answer_sources_candidates_and_winner(index_dir, capsys):
    code = run_cli(
        ["ask", "capital of Italy?", "--index", str(index_dir), "--generator", "echo", "-k", "2"]
    )
    assert code == 0
    out = capsys.readouterr().out
    # the echo LLM repeats the prompt's first line
    assert out.splitlines()[0] == "Sources:"
    assert " [1] rome.md (Capitals) [0:" in out  # the top source is the Rome chunk
    assert "Candidates (self_certainty):" in out
    assert "winner: bm25" in out


def test_ask_json_holds_the_answer_and_its_candidates(index_dir, capsys):
    run_cli(
        [
            "ask",
            "capital of France?",
            "--index",
            str(index_dir),
            "--generator",
            "echo",
            "--strategy",
            "confident",
            "--fast",
            "--json",
            "--abstain-below",
            "1e9",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "confident-fast"
    assert data["abstained"] and data["text"] == "not enough evidence in the sources"
    assert data["citations"][0]["source"] == "paris.md"
    assert data["candidates"][0]["name"] == "bm25"


def test_ask_closed_book_needs_no_index(tmp_path, capsys):
    code = run_cli(
        [
            "ask",
            "capital of Italy?",
            "--index",
            str(tmp_path / "none"),
            "--generator",
            "echo",
            "--strategy",
            "llm",
            "--no-stream",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "capital of Italy?" and "winner: llm" in out


def test_ask_without_an_index_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="rag ingest"):
        run_cli(["ask", "q", "--index", str(tmp_path / "none"), "--generator", "echo"])
