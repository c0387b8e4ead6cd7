"""Every notebook runs top to bottom in a real Jupyter kernel, offline, and leaves nothing behind.

Each runs from an in-memory copy (the repository's files are never rewritten) with its working
folder in notebooks/ and a fresh, empty TMPDIR that must be empty again afterwards (each notebook
removes its own temporary folder). A notebook that draws must show a PNG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PLOTTING = ("plt.", "_figure(")


def execute(nb, tmp_path: Path, timeout: int = 300):  # noqa: ANN001, ANN201
    """Run ``nb`` in the ``python3`` kernel (ipykernel's, this interpreter) with TMPDIR in
    ``tmp_path``; return the executed notebook."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    env.pop("MPLBACKEND", None)  # the inline backend, as in Jupyter
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    client.execute(env=env)  # raises CellExecutionError on the first failing cell
    left = sorted(p.name for p in scratch.iterdir())
    assert left == [], f"the notebook left {left} in TMPDIR"
    return nb


def test_the_notebooks_are_numbered_and_saved_with_outputs() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5 and names[0] == "01_quickstart.ipynb"
    assert all(n[:2].isdigit() and n[2] == "_" for n in names)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("outputs") for c in code[-1:]), f"{path.name} is saved without outputs"


def test_the_kernel_runs_this_interpreter(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    out = execute(nb, tmp_path, timeout=60).cells[0].outputs[0]["text"].strip()
    assert Path(out).resolve() == Path(sys.executable).resolve()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, tmp_path: Path) -> None:
    nb = execute(nbformat.read(path, as_version=4), tmp_path)
    nbformat.write(nb, tmp_path / path.name)  # the executed copy, for a look after a failure
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a cell wrote to stderr"
    if any(marker in sources for marker in PLOTTING):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no plot"
