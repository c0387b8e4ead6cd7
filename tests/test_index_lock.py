"""One writer at a time per index folder, with real processes: nothing a writer commits is lost."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from connectors.directory import load_directory
from rag.index import Index, IndexConfig, IndexLockedError, WriterLock
from rag.index import lock as lock_module
from rag.index.config import EncoderEntry

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
HOLDER = (
    "import sys, time\n"
    "from rag.index.lock import WriterLock\n"
    "with WriterLock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)
WORDS = "bone heart liver gene vitamin fracture runner fasting insulin mice cells density"


def folder(path: Path, name: str, files: int) -> Path:
    path.mkdir(parents=True)
    words = WORDS.split()
    for i in range(files):
        text = " ".join(words[(i + j) % len(words)] for j in range(40))
        (path / f"{name}{i}.md").write_text(f"# {name} {i}\n\n{text} {name}{i}\n", "utf-8")
    return path


def config() -> IndexConfig:
    return IndexConfig(encoders=[EncoderEntry("bm25", "lexical")], store="memory")


def ingest_cli(source: Path, index: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "rag.cli", "ingest", str(source), "--index", str(index)]
    cmd += ["--encoder", "bm25", "--store", "memory", "--no-progress", *extra]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def hold(index: Path) -> subprocess.Popen[str]:
    """A process holding ``index``'s writer lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(index)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def assert_complete(index_dir: Path, sources: list[Path]) -> None:
    """Every file of ``sources`` indexed, with its chunks in the docstore and the BM25 store."""
    index = Index(index_dir)
    expected = {str(p.resolve()) for s in sources for p in s.glob("*.md")}
    assert {e["source"] for e in index.manifest["files"].values()} == expected
    ids = {c.id for c in index.all_chunks()}
    assert ids == {i for e in index.manifest["files"].values() for i in e["chunk_ids"]}
    assert index.store("bm25").count() == len(ids) > 0
    found = index.search("bone heart", k=100, dedup=False)  # the files are near-copies
    assert {h.chunk.doc_id for h in found} == expected


def test_two_concurrent_cli_ingests_keep_both_folders(tmp_path: Path) -> None:
    a = folder(tmp_path / "a", "alpha", 12)
    b = folder(tmp_path / "b", "beta", 12)
    procs = [ingest_cli(a, tmp_path / "ix"), ingest_cli(b, tmp_path / "ix")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_complete(tmp_path / "ix", [a, b])


def test_an_index_opened_before_another_writer_commits_reloads(tmp_path: Path) -> None:
    # Both objects read the (empty) folder first; the one that writes second must not overwrite
    # the other's manifest or store with what it read before.
    a = folder(tmp_path / "a", "alpha", 3)
    b = folder(tmp_path / "b", "beta", 3)
    first, second = Index(tmp_path / "ix", config()), Index(tmp_path / "ix", config())
    first.known_hashes(), second.known_hashes()
    second.ingest(load_directory(b))
    first.store("bm25")  # opened, but before
    first.ingest(load_directory(a))
    assert_complete(tmp_path / "ix", [a, b])


def test_a_killed_writer_does_not_block_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proc = hold(tmp_path / "ix")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert lock_module.holder(tmp_path / "ix" / "writer.lock")["pid"] == proc.pid  # type: ignore[index]
    caplog.set_level(logging.DEBUG, logger="rag.index.lock")
    start = time.monotonic()
    with WriterLock(tmp_path / "ix", timeout=0):
        assert lock_module.holder(tmp_path / "ix" / "writer.lock")["pid"] == os.getpid()  # type: ignore[index]
    assert time.monotonic() - start < 1
    assert f"stale writer lock of pid {proc.pid}" in caplog.text
    assert (tmp_path / "ix" / "writer.lock").read_text() == ""  # released: not stale again


def test_a_held_lock_fails_at_once_or_after_the_timeout_naming_the_holder(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    a = folder(tmp_path / "a", "alpha", 2)
    proc = hold(tmp_path / "ix")
    try:
        start = time.monotonic()
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid} "):
            WriterLock(tmp_path / "ix", timeout=0).__enter__()
        assert time.monotonic() - start < 1
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid} "):
            Index(tmp_path / "ix", config(), lock_timeout=0.3).ingest(load_directory(a))
        assert time.monotonic() - start >= 0.3
        err = capfd.readouterr().err
        assert f"waiting for the writer lock of {tmp_path / 'ix'} held by pid {proc.pid}" in err
        cli = ingest_cli(a, tmp_path / "ix", "--wait-lock", "0")
        _, err = cli.communicate(timeout=60)
        assert cli.returncode == 2
        assert f"is being written by pid {proc.pid}" in err
        assert not (tmp_path / "ix" / "manifest.json").exists()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    # once it is gone, a writer that waits gets in
    Index(tmp_path / "ix", config(), lock_timeout=5).ingest(load_directory(a))
    assert_complete(tmp_path / "ix", [a])


def test_the_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(
    tmp_path: Path,
) -> None:
    a = folder(tmp_path / "a", "alpha", 2)
    index = Index(tmp_path / "ix", config(), lock_timeout=0)
    with WriterLock(tmp_path / "ix", timeout=0) as outer:
        with index.writing(), WriterLock(tmp_path / "ix", timeout=0) as inner:
            report = index.ingest(load_directory(a))  # a nested writer: no deadlock
            assert (outer.depth, inner.depth) == (1, 3)
            index.remove([report.ingested[0]])
            assert list(index.manifest["files"]) == [report.ingested[1]]
        errors: list[BaseException] = []

        def other_thread() -> None:
            try:
                with WriterLock(tmp_path / "ix", timeout=0):
                    pass
            except IndexLockedError as exc:
                errors.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert len(errors) == 1 and f"pid {os.getpid()} " in str(errors[0])
    assert len(report.ingested) == 2
    assert (tmp_path / "ix" / "writer.lock").read_text() == ""
    with WriterLock(tmp_path / "ix", timeout=0):  # released by the outermost exit
        pass


def test_without_fcntl_the_lock_file_itself_is_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lock_module, "fcntl", None)
    caplog.set_level(logging.DEBUG, logger="rag.index.lock")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    path = tmp_path / "ix" / "writer.lock"
    path.parent.mkdir()
    named = {"host": socket.gethostname(), "command": "rag ingest", "since": time.time()}
    path.write_text(json.dumps({**named, "pid": dead.pid}))
    with WriterLock(tmp_path / "ix", timeout=0):  # the pid it names is gone: stale
        assert lock_module.holder(path)["pid"] == os.getpid()  # type: ignore[index]
    assert f"stale writer lock of pid {dead.pid}" in caplog.text
    assert not path.exists()  # released
    path.write_text(json.dumps({**named, "pid": os.getppid()}))  # a live pid keeps it
    with pytest.raises(IndexLockedError, match=f"pid {os.getppid()} "):
        WriterLock(tmp_path / "ix", timeout=0.1).__enter__()
