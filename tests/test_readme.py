"""The README's Python blocks run as written and print what the README says they print.

The blocks run in order in one fresh interpreter (the LangChain block uses the quickstart's
``index``), from a folder holding a copy of the repository's ``docs/``, the way a user runs them
from a clone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme_lines import same_up_to_rounding

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER = "/path/to/situated-rag"


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def quickstart_output() -> list[str]:
    """The text block right after the five-line quickstart."""
    after = README[README.index("From Python, five lines") :]
    return fenced_blocks_in(after, "text")[0].strip().splitlines()


def fenced_blocks_in(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def normalise(line: str) -> str:
    return re.sub(r" in [0-9.]+s$", " in Ns", line)


def test_quickstart_is_five_lines() -> None:
    quickstart = fenced_blocks("python")[0]
    lines = [line for line in quickstart.splitlines() if line.strip()]
    assert len(lines) == 5 and lines[0] == "import rag"


@pytest.mark.slow
def test_readme_python_blocks_run_as_written(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("langchain_core")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    script = "\n\n".join(fenced_blocks("python"))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.replace(str(tmp_path.resolve()), PLACEHOLDER).strip().splitlines()
    expected = quickstart_output()
    got = [normalise(line) for line in printed[: len(expected)]]
    assert len(got) == len(expected)
    for line, want in zip(got, expected, strict=True):
        assert same_up_to_rounding(line, normalise(want)), (line, want)
    # the LangChain block: four documents whose metadata carries the chunk's source
    count, source = printed[len(expected)].split(" ", 1)
    assert count == "4" and source.startswith(f"{PLACEHOLDER}/docs/")
    assert (tmp_path / ".rag_index" / "quickstart").is_dir()
