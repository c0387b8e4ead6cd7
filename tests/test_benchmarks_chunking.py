"""benchmarks/bench_chunking.py runs end to end on a tiny input (two short "novels" and a few
abstracts written here) and prints both tables; the recursive chunker has no chunk over the
limit. The figures themselves are in BENCHMARKS.md ("Chunking speed (issue 11)")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # a subprocess that imports tiktoken (and chonkie when installed)

PARAGRAPH = (
    "It is a truth universally acknowledged, that a single man in possession of a good\n"
    "fortune, must be in want of a wife. However little known the feelings or views of such\n"
    'a man may be on his first entering a neighbourhood, this truth is so well fixed. "Mr.\n'
    'Bennet," said his lady to him one day, "have you heard that Netherfield Park is let at last?"'
)


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    books = tmp_path / "books"
    books.mkdir()
    for name in ("one", "two"):
        chapters = [f"Chapter {n}\n\n\n" + "\n\n".join([PARAGRAPH] * (n + 2)) for n in (1, 2, 3)]
        (books / f"{name}.txt").write_text(f"{name.title()}\n\n\n" + "\n\n".join(chapters))
    corpus = tmp_path / "corpus.jsonl"
    records = [{"_id": str(i), "title": f"T{i}", "text": PARAGRAPH * (i % 3 + 1)} for i in range(6)]
    corpus.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return books, corpus


def test_bench_chunking_prints_both_tables(tmp_path: Path) -> None:
    books, corpus = write_inputs(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_chunking.py"),
            str(books),
            "--scifact",
            str(corpus),
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    assert out.startswith("2 books")
    assert "| recursive | 256 |" in out  # the throughput table
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| novels")]
    rows += [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| scifact")]
    assert {(r[1].strip(), r[2].strip()) for r in rows} >= {
        (size, name) for size in ("64", "256") for name in ("floor", "recursive")
    }
    for cells in rows:
        if cells[2].strip() == "recursive":
            assert float(cells[4]) > 0  # x floor
            assert cells[7].strip() == "0"  # no chunk over the limit
