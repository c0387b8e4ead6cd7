"""The recipes and the quickstart notebook run as shipped (offline, no LLM needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_search_a_folder_recipe_runs_on_the_shipped_docs() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "search_a_folder.py"),
            str(ROOT / "docs"),
            "how",
            "are",
            "bad",
            "files",
            "reported?",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    assert "ingested 6 files" in out
    assert "1. Ingestion > Bad files" in out
    assert "langchain:" in out


def test_quickstart_notebook_cells_run_in_order(tmp_path: Path) -> None:
    nb = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text("utf-8"))
    code = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    script = tmp_path / "notebook.py"
    script.write_text(code, "utf-8")
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    ).stdout
    assert "ingested 6 files" in out
    assert "characters of context" in out
