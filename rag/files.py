"""Durable file writes shared by every folder the project keeps (index, stores, caches).

A reader never sees half a file: data goes to a temp file in the same folder, is fsynced, and
``os.replace`` puts it in place (atomic on POSIX and Windows); the folder is then fsynced so the
new directory entry survives a power cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (not atomically) and fsync it: for a file not yet referenced."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` in one step (text is written as UTF-8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_synced(tmp, payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as compact JSON (UTF-8, not ASCII-escaped), replacing ``path`` in one step."""
    write_atomic(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def remove_stale_temps(folder: str | os.PathLike[str]) -> None:
    """Delete temp files :func:`write_atomic` left in ``folder`` when its process was killed.

    A temp file names its writer's pid; one whose process is gone can never be renamed into
    place, so it is only litter. A live writer's temp file (another process mid-write) is kept.
    """
    for entry in Path(folder).glob(".*.tmp"):
        pid = entry.name[: -len(".tmp")].rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    return True


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make new directory entries in ``folder`` durable (POSIX; Windows cannot open a folder)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(path: Path, fmt: str, version: int) -> dict[str, Any]:
    """A folder's ``meta.json``, refused unless it names format ``fmt`` at ``version``."""
    meta = json.loads(path.read_text("utf-8"))
    if meta.get("format") != fmt:
        raise ValueError(f"{path} is not a {fmt} file")
    if meta.get("version") != version:
        raise ValueError(
            f"{path} has format version {meta.get('version')}; this code reads version "
            f"{version} (upgrade the package, or re-index)"
        )
    return meta


def file_state(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """``(inode, mtime ns, size)`` of ``path`` (``None``: absent). A file replaced with
    ``os.replace`` gets a new inode, so a reader compares this to see that a writer committed."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size
