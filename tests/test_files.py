"""Durable writes: a killed writer's temp file is swept by the next writer, a live one's kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rag.files import remove_stale_temps, write_atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    write_atomic(tmp_path / "meta.json", "{}")
    dead = tmp_path / f".meta.json.{_dead_pid()}.tmp"
    live = tmp_path / f".meta.json.{os.getppid()}.tmp"  # our parent is running
    other = tmp_path / ".notes.tmp"  # not named by a pid: not ours to judge
    for path in (dead, live, other):
        path.write_text("half")

    remove_stale_temps(tmp_path)

    assert not dead.exists()
    assert live.exists() and other.exists()
    assert (tmp_path / "meta.json").read_text() == "{}"


def test_the_docstore_sweeps_a_killed_writers_temp_files_on_its_first_save(tmp_path: Path) -> None:
    from rag.index.docstore import Docstore
    from rag.types import Document, sha256_hex

    (tmp_path / "docstore").mkdir()
    stale = [
        tmp_path / f".manifest.json.{_dead_pid()}.tmp",
        tmp_path / "docstore" / f".abc.json.{_dead_pid()}.tmp",
    ]
    for path in stale:
        path.write_text("half")
    store = Docstore(tmp_path)
    doc = Document(id="/d.md", text="one two", source="/d.md", content_hash=sha256_hex("x"))
    store.put(doc, [], ["bm25"])
    store.save_manifest()
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "manifest.json").is_file()
