"""Load files and folders: pick a connector per file, turn every failure into an IngestError.

The connector is chosen from the content first and the extension second (:func:`detect_format`):
a PDF named ``.txt`` is parsed as a PDF, a ``.md`` file full of NUL bytes is reported as binary,
and a text file without a known extension is read as plain text. ``.gz`` files are
decompressed first and sniffed again (so ``manual.txt.gz`` is plain text).

Identity: ``Document.id`` is the path relative to the folder given to :func:`load_directory`
(POSIX separators), so re-ingesting the same folder from another working directory gives the
same ids; :func:`load_file` uses the path string as given. ``Document.source`` and
``IngestError.path`` are the absolute path (the folder is resolved, the file name is kept as
found, so a symlinked file keeps its own name). A name that is not valid UTF-8 is given with its
undecodable bytes written as ``\\xNN`` (:func:`connectors.walk.display_name`).

Walking (:mod:`connectors.walk`) follows symbolic links only inside the folder unless
``follow_links`` is asked; every entry not read (a link out of the tree, a dangling link, a loop,
a FIFO, an unreadable folder) is yielded as an IngestError whose reason says so, and an ingest
with ``prune_missing_under`` keeps what is indexed under such a path. Reading is bounded per file
(:mod:`connectors.limits`): size on disk, decompressed size, time, and text that is binary, one
repeated character or the same content over and over is refused.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from connectors.common import Connector, ConnectorError, MissingExtra, explain
from connectors.docx import parse_docx
from connectors.html import parse_html
from connectors.limits import (
    Limits,
    ParseTimeout,
    decompression_caps,
    gunzip,
    text_refusal,
    time_limit,
)
from connectors.markdown import parse_markdown
from connectors.pdf import parse_pdf
from connectors.text import parse_text
from connectors.unstructured import parse_unstructured
from connectors.walk import Entry, display_name, walk
from rag.types import Document, IngestError, sha256_hex

_log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024

CONNECTORS: dict[str, Connector] = {
    "pdf": parse_pdf,
    "docx": parse_docx,
    "html": parse_html,
    "markdown": parse_markdown,
    "text": parse_text,
    "unstructured": parse_unstructured,
}

EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
}

# Leading bytes of common binary formats, to name them in the error.
BINARY_MAGIC: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF87a": "GIF image",
    b"GIF89a": "GIF image",
    b"II*\x00": "TIFF image",
    b"MM\x00*": "TIFF image",
    b"\x7fELF": "ELF executable",
    b"PK\x03\x04": "zip archive",
    b"Rar!\x1a\x07": "RAR archive",
    b"7z\xbc\xaf\x27\x1c": "7-Zip archive",
    b"\xfd7zXZ\x00": "xz archive",
    b"\x28\xb5\x2f\xfd": "zstd archive",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "OLE file (legacy .doc/.xls/.ppt)",
    b"SQLite format 3\x00": "SQLite database",
    b"OggS": "Ogg media",
    b"fLaC": "FLAC audio",
    b"ID3": "MP3 audio",
    b"\xca\xfe\xba\xbe": "Java class / Mach-O file",
    b"wOFF": "WOFF font",
    b"wOF2": "WOFF2 font",
    b"\x00asm": "WebAssembly module",
    b"\x1f\x8b": "gzip archive",
}
_SNIFF = 8192
# Control characters that never occur in text (tab, newlines, form feed, escape are allowed).
_CONTROL = bytes(c for c in range(32) if c not in b"\t\n\r\f\b\x1b")


def get(name: str) -> Connector:
    """The connector registered as ``name``; the error names every valid choice."""
    try:
        return CONNECTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown connector {name!r}; choose one of: {', '.join(sorted(CONNECTORS))}"
        ) from None


def detect_format(data: bytes, name: str) -> str:
    """The connector name for a file's bytes and name; ConnectorError for empty/binary files."""
    if not data:
        raise ConnectorError("empty file")
    head = data[:_SNIFF]
    ext = _extension(name)
    if b"%PDF-" in data[:1024]:  # the header may follow a little junk
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if ext == ".docx" or _is_docx(data):
            return "docx"  # a broken .docx gets the parser's reason
        raise ConnectorError("binary file (zip archive, not a Word document)")
    for magic, kind in BINARY_MAGIC.items():
        if head.startswith(magic):
            raise ConnectorError(f"binary file ({kind})")
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16:
        if b"\x00" in data:  # anywhere, not only in the sniffed head: never index NULs
            raise ConnectorError("binary file (contains NUL bytes)")
        controls = sum(head.count(bytes([c])) for c in _CONTROL)
        if controls > 0.1 * len(head):
            raise ConnectorError("binary file (mostly control bytes)")
    if _looks_like_html(head):
        return "html"
    return EXTENSIONS.get(ext, "text")


def load_file(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    limits: Limits | None = None,
) -> Document | IngestError:
    """Parse one file. ``format`` forces a connector (see :data:`CONNECTORS`)."""
    path = Path(path)
    source = display_name(str(path.parent.resolve() / path.name))
    return load_entry(
        path,
        id=display_name(path.as_posix()),
        source=source,
        format=format,
        max_bytes=max_bytes,
        limits=limits or Limits(),
    )


@dataclass(frozen=True)
class UnchangedFile:
    """A file whose bytes hash to the value the caller already knows: it was not parsed."""

    path: str
    content_hash: str


def load_directory(
    root: str | os.PathLike[str],
    include: Sequence[str] = ("**/*",),
    exclude: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    format: str | None = None,
    known_hashes: Mapping[str, str] | None = None,
    follow_links: bool = False,
    limits: Limits | None = None,
) -> Iterator[Document | IngestError | UnchangedFile]:
    """Every non-hidden file under ``root`` matching ``include`` and not ``exclude``, in sorted
    order of their relative paths, as a Document or an IngestError.

    Patterns are globs over the POSIX path relative to ``root``: ``*`` and ``?`` stay within
    one folder, ``**/`` spans any number of folders (including none). A pattern without ``/``
    is matched against the file name alone, at any depth (``*.md``). Files or folders whose
    name starts with ``.`` are skipped.

    Entries that are not read (see :mod:`connectors.walk`) come as IngestErrors in the same
    order; a folder-level one (an unreadable folder) is given unless ``exclude`` names the
    folder. ``follow_links`` follows symbolic links that leave ``root``. ``limits`` bounds each
    file's decompressed size and parse time (:class:`connectors.limits.Limits`).

    ``known_hashes`` maps absolute source paths to content hashes (an index's manifest): a file
    whose bytes still hash to that value is yielded as :class:`UnchangedFile` without parsing,
    so re-ingesting an unchanged folder costs one read and one hash per file.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    if format is not None:
        get(format)  # fail before walking on a wrong name
        if format == "unstructured":
            from connectors.unstructured import require_unstructured

            require_unstructured()  # a missing extra is one ImportError, not an error per file
    includes = [compile_glob(p) for p in include]
    excludes = [compile_glob(p) for p in exclude]
    base = root.resolve()
    limits = limits or Limits()
    for entry in sorted(walk(root, follow_links=follow_links), key=lambda e: e.rel):
        if not is_selected(entry, includes, excludes):
            continue
        source = display_name(str(base / entry.rel))
        if entry.skip is not None:
            yield IngestError(source, entry.skip)
            continue
        yield load_entry(
            root / entry.rel,
            id=display_name(entry.rel),
            source=source,
            format=format,
            max_bytes=max_bytes,
            limits=limits,
            known_hash=(known_hashes or {}).get(source),
        )


def count_files(
    root: str | os.PathLike[str],
    include: Sequence[str] = ("**/*",),
    exclude: Sequence[str] = (),
    *,
    follow_links: bool = False,
) -> int:
    """How many items :func:`load_directory` yields for these arguments (a walk, nothing read):
    a progress bar's total."""
    includes = [compile_glob(p) for p in include]
    excludes = [compile_glob(p) for p in exclude]
    entries = walk(Path(root), follow_links=follow_links)
    return sum(1 for entry in entries if is_selected(entry, includes, excludes))


def is_selected(entry: Entry, includes: list, excludes: list) -> bool:
    if entry.folder:  # a folder's record matters whatever the file patterns; not if excluded
        return not any(_matches(m, entry.rel) or _matches(m, entry.rel + "/") for m in excludes)
    rel = entry.rel
    return any(_matches(m, rel) for m in includes) and not any(_matches(m, rel) for m in excludes)


def load_entry(
    path: Path,
    *,
    id: str,
    source: str,
    format: str | None,
    max_bytes: int,
    limits: Limits,
    known_hash: str | None = None,
) -> Document | IngestError | UnchangedFile:
    connector = get(format) if format is not None else None
    try:
        raw = _read(path, max_bytes)
        if known_hash is not None and sha256_hex(raw) == known_hash:
            return UnchangedFile(source, known_hash)
        with time_limit(limits.max_seconds):
            return _parse(raw, path.name, connector, id=id, source=source, limits=limits)
    except ConnectorError as exc:
        return IngestError(source, exc.reason)
    except MissingExtra:
        raise
    except ParseTimeout:
        return IngestError(
            source,
            f"took longer than {limits.max_seconds:g} s to read (the limit is Limits.max_seconds)",
        )
    except OSError as exc:
        return IngestError(source, f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # one bad file must not stop a batch
        _log.debug("reading %s failed", source, exc_info=True)
        return IngestError(source, explain(exc, "file"))


def _read(path: Path, max_bytes: int) -> bytes:
    # O_NONBLOCK: a FIFO put where a file was listed must not block the batch on open()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConnectorError("skipped: not a regular file")
        if info.st_size > max_bytes:
            raise ConnectorError(f"file too large ({info.st_size} bytes > {max_bytes} byte limit)")
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:  # it grew while being read
        raise ConnectorError(f"file too large (over the {max_bytes} byte limit)")
    return raw


def _parse(
    raw: bytes, name: str, connector: Connector | None, *, id: str, source: str, limits: Limits
) -> Document:
    data = raw
    if raw.startswith(b"\x1f\x8b") and connector is None:
        data, name = gunzip(raw, limits.max_decompressed_bytes), name.removesuffix(".gz")
    format = detect_format(data, name) if connector is None else "file"
    connector = connector or CONNECTORS[format]
    try:
        with decompression_caps(data, format, limits.max_decompressed_bytes):
            document = connector(data, id=id, source=source)
    except (ConnectorError, MissingExtra):
        raise
    except Exception as exc:  # the parser's own words are logged, not shown (see explain)
        _log.debug("parsing %s as %s failed", source, format, exc_info=True)
        raise ConnectorError(explain(exc, format)) from exc
    reason = text_refusal(document.text)
    if reason is not None:
        raise ConnectorError(reason)
    if data is not raw:  # the hash says whether the file changed: hash what is on disk
        document = replace(document, content_hash=sha256_hex(raw))
    return document


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "word/document.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return True
    # XHTML: an XML declaration (and maybe comments) before the <html> element
    return start.startswith(b"<?xml") and b"<html" in start[:2048]


def compile_glob(pattern: str) -> tuple[re.Pattern[str], bool]:
    """A glob as a regex, and whether it applies to the file name only (no ``/`` in it)."""
    i, out = 0, []
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z"), "/" not in pattern


def _matches(glob: tuple[re.Pattern[str], bool], rel: str) -> bool:
    regex, name_only = glob
    return regex.match(rel.rsplit("/", 1)[-1] if name_only else rel) is not None
