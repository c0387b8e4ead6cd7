"""What an embedded Chroma client in this process has seen of its database folder.

An embedded client loads a collection's HNSW index once and never sees what another process
writes afterwards, while the SQLite metadata it reads is always current: a long-lived reader's
query then returns ids another process deleted (with no metadata, which read back as "chunk
format None") and never the vectors it added. Chroma also caches one client System per folder,
so a fresh view needs that cache entry dropped before a new client is made.

A write is seen in SQLite's file change counter (header bytes 24-27, bumped by every committed
write transaction in rollback-journal mode, which Chroma uses) and in the file's stat. Starting
a System writes once itself, so the state is recorded after our own connect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

State = tuple[int, int, int, bytes] | None


@dataclass
class Folder:
    """One database folder as this process has seen it: ``generation`` counts the re-opens."""

    path: str
    state: State = None
    generation: int = 0


_folders: dict[str, Folder] = {}


def folder(path: str | Path) -> Folder:
    key = os.path.realpath(path)
    if key not in _folders:
        _folders[key] = Folder(str(path), sqlite_state(path))
    return _folders[key]


def sqlite_state(path: str | Path) -> State:
    """The database file's inode, mtime, size and change counter (``None``: no database yet)."""
    file = Path(path) / "chroma.sqlite3"
    try:
        with open(file, "rb") as fh:
            found = os.fstat(fh.fileno())
            header = fh.read(100)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size, header[24:28]


def check(seen: Folder) -> None:
    """Start a new generation when another process wrote to the folder since we looked."""
    if sqlite_state(seen.path) != seen.state:
        from chromadb.api.shared_system_client import SharedSystemClient

        # only the cache entry: clients of the old System keep working until they re-open
        systems = SharedSystemClient._identifier_to_system
        for key in [k for k in systems if os.path.realpath(k) == os.path.realpath(seen.path)]:
            systems.pop(key, None)
        seen.generation += 1
        seen.state = None  # recorded after the next connect


def connected(seen: Folder) -> None:
    """Record the state once a client of the current generation is up (its own write done)."""
    if seen.state is None:
        seen.state = sqlite_state(seen.path)


def wrote(seen: Folder) -> None:
    """Our own write: nothing to re-read."""
    seen.state = sqlite_state(seen.path)
