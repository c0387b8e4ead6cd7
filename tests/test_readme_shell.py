"""The README's shell blocks meant to run (fenced ``bash``) run as written, from a clone.

Blocks fenced ``sh`` are illustrations (network installs, ../shared/data, a server left
running, jobs of many minutes) and say what they cost instead. ``bash scripts/test.sh`` is the
command running this very test, so it is the one ``bash`` block not run again here.

The blocks run in order in one folder laid out like a clone (``scripts/``, ``docs/``,
``pyproject.toml`` copied; ``.venv`` linked to this checkout's), so ``scripts/demo.sh`` finds
the environment set up and runs the main job; its output must end as the README says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.readme_lines import same_up_to_rounding
from tests.test_readme import README, ROOT, fenced_blocks

NOT_RUN_AGAIN = {"bash scripts/test.sh"}
SECONDS = re.compile(r" in [0-9.]+s$")


def runnable_blocks() -> list[str]:
    return [b for b in fenced_blocks("bash") if b.strip() not in NOT_RUN_AGAIN]


def demo_output() -> list[str]:
    after = README[README.index("The demo ends like this") :]
    block = re.findall(r"^```text\n(.*?)^```", after, flags=re.S | re.M)[0]
    return block.strip().splitlines()


def test_every_bash_block_is_accounted_for() -> None:
    blocks = [b.strip() for b in fenced_blocks("bash")]
    assert "bash scripts/demo.sh" in blocks and "bash scripts/test.sh" in blocks
    assert len(runnable_blocks()) == len(blocks) - 1


def clone_like(tmp_path: Path) -> Path:
    root = tmp_path / "situated-rag"
    root.mkdir()
    for name in ("scripts", "docs"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / ".venv").symlink_to(ROOT / ".venv")
    return root


@pytest.mark.slow
def test_readme_bash_blocks_run_as_written(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    stamp = ROOT / ".venv" / ".rag-setup-stamp"
    want = subprocess.run(
        "cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1",
        shell=True,  # a fixed command of our own, no input in it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        pytest.skip("the environment was not set up by scripts/setup.sh for this pyproject.toml")
    root = clone_like(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    outputs = []
    for block in runnable_blocks():
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, f"{block}\n{result.stderr[-3000:]}"
        outputs.append(result.stdout)
    demo = outputs[0].replace(f"{root}/", "").strip().splitlines()
    expected = demo_output()
    assert SECONDS.sub("", expected[0]) in [SECONDS.sub("", line) for line in demo]
    tail = demo[-(len(expected) - 1) :]
    assert len(tail) == len(expected) - 1
    for line, want in zip(tail, expected[1:], strict=True):
        if want.endswith(" ..."):  # an excerpt: its width follows the terminal's
            assert line.startswith(want[:-4]), (line, want)
        else:
            assert same_up_to_rounding(line, want), (line, want)
    use_it = outputs[1]
    assert "no results" not in use_it and use_it.count("1. [") >= 4
    assert "consistent" in use_it and "removed" in use_it
    # nothing is written outside the clone-like folder
    assert not (ROOT / "docs" / ".rag_index").exists()
