"""One writer at a time per index folder: ``DIR/writer.lock``.

Two writers that each read the manifest, add their files and write it back lose one another's
work, so every writer holds :class:`WriterLock` (readers never do: files are replaced
atomically). It is ``flock(LOCK_EX)``, which the kernel drops when the holder dies, so a killed
writer never blocks the next one; the file names the holder (pid, host, command, start) for a
waiting writer to report. Without ``fcntl`` the file itself is the lock (``O_CREAT | O_EXCL``),
cleared when the pid it names is gone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: the O_EXCL fallback
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "writer.lock"
POLL_SECONDS = 0.05
UNNAMED_SECONDS = 10.0  # fallback: a lock file still empty this long lost its writer
log = logging.getLogger(__name__)


class IndexLockedError(RuntimeError):
    """Another process writes to the index and the caller chose not to wait (longer)."""


@dataclass
class _Held:
    """This process's hold on one lock file: one OS lock, re-entrant per thread (other threads
    of the process wait on ``rlock``)."""

    rlock: Any = field(default_factory=threading.RLock)
    depth: int = 0
    fd: int = -1


_held: dict[str, _Held] = {}
_registry = threading.Lock()


class WriterLock:
    """``with WriterLock(index_dir, timeout=None) as lock:`` the index's writer lock.

    ``timeout=None`` waits as long as it takes (saying once on stderr whom it waits for);
    ``0`` raises :class:`IndexLockedError` at once, naming the holder; ``s`` waits up to ``s``
    seconds. Nested in the same thread on the same folder it only counts ``lock.depth``.
    """

    def __init__(self, root: str | os.PathLike[str], timeout: float | None = None) -> None:
        self.path = Path(root) / LOCK_NAME
        self.timeout = timeout
        self.depth = 0  # once entered: 1 for the outermost writer of this process

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _registry:
            self._held = held = _held.setdefault(os.path.realpath(self.path), _Held())
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        if not held.rlock.acquire(timeout=-1 if self.timeout is None else max(self.timeout, 0)):
            raise locked_error(self.path)  # another thread of this process writes
        try:
            if held.depth == 0:
                held.fd = _acquire(self.path, deadline)
                _write_holder(held.fd)
        except BaseException:
            held.rlock.release()
            raise
        held.depth += 1
        self.depth = held.depth
        return self

    def __exit__(self, *exc: object) -> None:
        held = self._held
        held.depth -= 1
        if held.depth == 0:
            os.ftruncate(held.fd, 0)  # an empty file is a released lock, not a stale one
            os.close(held.fd)  # closing drops the flock
            if fcntl is None:
                self.path.unlink(missing_ok=True)
        held.rlock.release()


def commit_state(root: Path) -> list[tuple[int, int, int] | None]:
    """What changes whenever a writer commits to ``root`` (both files are replaced, never
    edited): a writer that finds it changed since it read the folder must read it again."""
    state: list[tuple[int, int, int] | None] = []
    for name in ("index.json", "manifest.json"):
        try:
            found = (root / name).stat()
        except FileNotFoundError:
            state.append(None)
            continue
        state.append((found.st_ino, found.st_mtime_ns, found.st_size))
    return state


def holder(path: Path) -> dict[str, Any] | None:
    """Who the lock file names (``None``: nobody, or a file being written)."""
    try:
        found = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("pid"), int) else None


def describe(who: dict[str, Any] | None) -> str:
    if who is None:
        return "another writer"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who.get("since", 0)))
    return f"pid {who['pid']} ({who.get('command', '?')}, since {since})"


def locked_error(path: Path) -> IndexLockedError:
    return IndexLockedError(f"index {path.parent} is being written by {describe(holder(path))}")


def _acquire(path: Path, deadline: float | None) -> int:
    """The OS lock on ``path`` (its fd), waiting until ``deadline`` (``None``: for ever)."""
    said = False
    while (fd := _try(path, block=said and deadline is None)) is None:
        if deadline is not None and time.monotonic() >= deadline:
            raise locked_error(path)
        if not said:
            who = describe(holder(path))
            print(f"waiting for the writer lock of {path.parent} held by {who}", file=sys.stderr)
            said = True
        elif fcntl is None or deadline is not None:
            time.sleep(POLL_SECONDS)
    return fd


def _try(path: Path, block: bool) -> int | None:
    if fcntl is None:
        return _try_exclusive(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))  # Ctrl-C interrupts
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    # the flock is ours, so a pid still named is a holder that died without releasing it
    if (who := holder(path)) is not None:
        log.debug("cleared a stale writer lock of pid %s on %s", who["pid"], path.parent)
    return fd


def _try_exclusive(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        who = holder(path)
        if who is None:  # being written, or its writer died before naming itself
            try:
                if time.time() - path.stat().st_mtime < UNNAMED_SECONDS:
                    return None
            except FileNotFoundError:
                return _try_exclusive(path)
        elif who.get("host") != socket.gethostname() or _alive(who["pid"]):
            return None  # held, or from another host (whose pids are not ours to check)
        if holder(path) != who:  # a waiter beside us cleared it and took the lock
            return None
        pid = "?" if who is None else who["pid"]
        log.debug("cleared a stale writer lock of pid %s on %s", pid, path.parent)
        path.unlink(missing_ok=True)  # (a waiter that does so at this very moment can race)
        return _try_exclusive(path)  # or None, when another writer was quicker


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return bool(kernel32.GetLastError() == 5)  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def _write_holder(fd: int) -> None:
    argv = list(sys.argv) or ["?"]
    if Path(argv[0]).name in ("cli.py", "__main__.py", "rag"):
        argv[0] = "rag"  # python -m rag.cli reads as the console script does
    who = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(argv)}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({**who, "since": time.time()}).encode("utf-8"))  # fresh fd: offset 0
