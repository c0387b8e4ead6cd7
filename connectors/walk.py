"""Walking a folder safely: what to read, and a reason for every entry that is not read.

Regular files are read. Symbolic links are followed only inside the folder (a link to
``/etc/passwd`` is not ingested) unless ``follow_links`` is asked; a folder reached twice (a
link loop, or two links to one folder) is read once. Dangling links, link loops, FIFOs,
sockets, devices and folders that cannot be listed are not read, and each gets a reason, so
nothing is skipped silently. Names starting with ``.`` are hidden and skipped without a record.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath

FOLLOW_HINT = "use --follow-links (follow_links=True) to follow it"


@dataclass(frozen=True)
class Entry:
    """One thing found under the root: ``rel`` is its POSIX path relative to the root (as found:
    undecodable bytes are surrogate escapes), ``skip`` why it is not read (None: read it)."""

    rel: str
    skip: str | None = None
    folder: bool = False  # a folder-level record (unreadable folder, folder link)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}


def one_line(path: str) -> str:
    """``path`` with control characters (a newline in a file name) written as escapes, so a
    report line names exactly one file."""
    return path.translate(_CONTROL)


def display_name(path: str) -> str:
    """``path`` with undecodable bytes written as ``\\xNN``: a name that can be stored as JSON,
    hashed and printed. The file itself is still opened by its real name."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that are not escaped bytes
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def walk(root: Path, *, follow_links: bool = False) -> list[Entry]:
    """Every non-hidden entry under ``root`` (depth first; callers sort by ``rel``)."""
    base = root.resolve()
    seen = {_key(root)}  # (device, inode) of every folder read: loops and repeats stop here
    out: list[Entry] = []
    stack: list[tuple[str, Path]] = [("", root)]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                found = list(it)
        except OSError as exc:
            why = (
                "vanished during the walk" if isinstance(exc, FileNotFoundError) else "cannot read"
            )
            reason = f"{why} ({exc.strerror or exc}): folder skipped, its indexed files are kept"
            out.append(Entry(rel_dir, reason, folder=True))
            continue
        for item in found:
            if item.name.startswith("."):
                continue
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            entry, descend = _classify(item, rel, base, follow_links, seen)
            if entry is not None:
                out.append(entry)
            if descend:
                stack.append((rel, Path(item.path)))
    return out


def _classify(
    item: os.DirEntry, rel: str, base: Path, follow_links: bool, seen: set[tuple[int, int]]
) -> tuple[Entry | None, bool]:
    """What to do with one directory entry: (a record or a file to read, whether to descend)."""
    try:
        link = item.is_symlink()
        info = os.stat(item.path) if link else item.stat(follow_symlinks=False)
    except OSError as exc:
        return Entry(rel, _link_problem(exc) if _is_link(item) else _unreadable(exc)), False
    if link and not follow_links:
        target = os.path.realpath(item.path)
        if PurePath(target).parts[: len(base.parts)] != base.parts:
            reason = f"skipped: symbolic link to {display_name(target)}, outside the folder"
            return Entry(rel, f"{reason}; {FOLLOW_HINT}"), False
    if stat.S_ISDIR(info.st_mode):
        if link and not follow_links:
            reason = "skipped: symbolic link to a folder inside the tree (read at its own path)"
            return Entry(rel, reason, folder=True), False
        if (info.st_dev, info.st_ino) in seen:
            reason = "skipped: link to a folder already read (a link loop or a second path to it)"
            return Entry(rel, reason, folder=True), False
        seen.add((info.st_dev, info.st_ino))
        return None, True
    if stat.S_ISREG(info.st_mode):
        return Entry(rel), False
    return Entry(rel, f"skipped: not a regular file ({_kind(info.st_mode)})"), False


def _is_link(item: os.DirEntry) -> bool:
    try:
        return item.is_symlink()
    except OSError:
        return False


def _link_problem(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "skipped: broken symbolic link (its target does not exist)"
    if exc.errno == errno.ELOOP:
        return "skipped: symbolic link loop"
    return _unreadable(exc)


def _unreadable(exc: OSError) -> str:
    return f"cannot read file: {exc.strerror or exc}"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _key(path: Path) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)  # the root cannot be read: walk() records that
    return (info.st_dev, info.st_ino)
