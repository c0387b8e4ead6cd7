"""The BM25 store's files (layout in ``rag.stores.bm25``) and its input checks.

Segment files are written once, fsynced, and checked against ``meta.json`` when read back;
arrays are ``.npy`` loaded with ``allow_pickle=False``; chunks are JSON lines (the one chunk
codec, ``rag.stores._codec``), read only when a chunk is first needed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.files import file_state, fsync_dir, read_meta, remove_stale_temps, write_synced
from rag.stores._bm25_segments import Segment, SegmentChunks


def term_lists(value: Any, rows: int | None, what: str = "term lists") -> list[Sequence[str]]:
    """``value`` as one list of terms per item, refusing vectors and bare strings (that the
    terms are strings is checked on the vocabulary, see ``_bm25_segments.build``)."""
    if isinstance(value, str | bytes | np.ndarray) or not isinstance(value, Sequence):
        raise TypeError(
            f"a lexical store takes {what}: one list of terms per item (a lexical encoder's "
            f"output, e.g. BM25Encoder), not {type(value).__name__}"
        )
    out = list(value)
    for item in out:
        if not isinstance(item, list | tuple):
            raise TypeError(f"each of the {what} must be a list of terms, got {item!r:.60}")
    if rows is not None and len(out) != rows:
        raise ValueError(f"got {len(out)} term lists for {rows} chunks")
    return out


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def postings_dtype(postings: np.ndarray) -> type[np.integer]:
    """uint16 when every row number and count fits (a segment under 65,536 chunks: half the
    bytes of the postings, the largest part of the store), else int32; both are read."""
    return np.uint16 if not postings.size or int(postings.max()) <= 0xFFFF else np.int32


def write_segment(folder: Path, segment: Segment) -> None:
    path = folder / segment.name
    if path.exists():  # an uncommitted leftover of a killed write
        shutil.rmtree(path)
    path.mkdir(parents=True)
    lines = segment.docs.json_lines()
    write_synced(path / "chunks.jsonl", b"".join(line + b"\n" for line in lines))
    rows = {"ids": segment.docs.ids, "doc_ids": segment.docs.doc_ids, "terms": segment.terms}
    write_synced(
        path / "segment.json", json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()
    )
    write_synced(path / "tf_indptr.npy", _npy(segment.indptr.astype(np.int64, copy=False)))
    postings = np.stack([segment.rows, segment.tf])
    write_synced(path / "postings.npy", _npy(postings.astype(postings_dtype(postings))))
    write_synced(path / "doc_len.npy", _npy(segment.doc_len.astype(np.int32, copy=False)))
    fsync_dir(path)
    fsync_dir(folder)


class LinesReader:
    """Reads a segment's ``chunks.jsonl`` once, through a descriptor opened when the segment was
    loaded: a writer that later replaces the segment unlinks the file, and on POSIX the open
    descriptor keeps its data readable, so a reader holding an older generation never fails."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path, self.rows = path, rows
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def __call__(self) -> list[bytes]:
        fd, self.fd = self.fd, -1
        if fd < 0:  # read already (and closed): by name, as a last resort
            data = self.path.read_bytes()
        else:
            with os.fdopen(fd, "rb") as fh:
                data = fh.read()
        lines = data.split(b"\n")[:-1]  # JSON escapes every newline in a chunk
        if len(lines) != self.rows:
            raise ValueError(f"{self.path} has {len(lines)} lines, expected {self.rows}")
        return lines

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lines_reader(folder: Path, segment: Segment) -> Callable[[], list[bytes]]:
    """Reads ``segment``'s chunks as JSON lines, when they are first needed (the file is opened
    now, so that it stays readable after a later writer removes it)."""
    return LinesReader(folder / segment.name / "chunks.jsonl", segment.n_docs)


def write_dead(folder: Path, segment: Segment, number: int) -> None:
    """Write ``segment``'s tombstones to a new file and record its name on the segment."""
    name = f"dead-{number:06d}.npy"
    path = folder / segment.name
    write_synced(path / name, _npy(segment.dead.astype(np.int32, copy=False)))
    fsync_dir(path)
    segment.dead_file = name


def read_segment(folder: Path, info: dict[str, Any]) -> Segment:
    path = folder / info["name"]
    lines = LinesReader(path / "chunks.jsonl", info["docs"])  # first: it must outlive a writer
    rows = json.loads((path / "segment.json").read_text("utf-8"))
    indptr = np.load(path / "tf_indptr.npy", allow_pickle=False)
    postings = np.load(path / "postings.npy", allow_pickle=False)
    doc_len = np.load(path / "doc_len.npy", allow_pickle=False)
    dead = np.zeros(0, dtype=np.int32)
    if info["dead_file"] is not None:
        dead = np.load(path / info["dead_file"], allow_pickle=False)
    docs, n = info["docs"], info["postings"]
    for name, got, dtype, shape in [
        ("tf_indptr", indptr, np.int64, (info["terms"] + 1,)),
        ("postings", postings, postings.dtype if postings.dtype == np.uint16 else np.int32, (2, n)),
        ("doc_len", doc_len, np.int32, (docs,)),
        ("tombstones", dead, np.int32, (info["dead"],)),
    ]:
        if got.dtype != dtype or got.shape != shape:
            raise ValueError(f"{path}: {name} is {got.dtype} {got.shape}, expected {shape}")
    problems = [
        (len(rows["ids"]) != docs or len(rows["doc_ids"]) != docs, f"not {docs} ids"),
        (len(rows["terms"]) != info["terms"], f"not {info['terms']} terms"),
        (int(indptr[-1]) != n, "tf_indptr does not end at the postings count"),
        (n and int(postings[0].max()) >= docs, "postings point past the last row"),
        (len(dead) and (int(dead.min()) < 0 or int(dead.max()) >= docs), "bad tombstone rows"),
    ]
    for failed, message in problems:
        if failed:
            raise ValueError(f"{path}: {message}")
    segment = Segment(
        info["number"],
        SegmentChunks(rows["ids"], rows["doc_ids"]),
        rows["terms"],
        indptr,
        postings[0].astype(np.int32),
        postings[1].astype(np.int32),
        doc_len,
        dead=dead,
        written=True,
        dead_file=info["dead_file"],
    )
    segment.docs.read = lines
    return segment


RETRIES = 8  # a reader racing a writer that commits this often in a row gives up


def load_committed(
    folder: Path, fmt: str, version: int, reuse: dict[tuple[str, str | None], Segment]
) -> tuple[dict[str, Any], list[Segment], tuple[int, int, int]] | None:
    """The store committed in ``folder`` as one generation: its ``meta.json``, its segments and
    the meta's file state (``None``: no store yet). A writer removes the segments a new
    ``meta.json`` no longer lists, so a file that vanishes while it is read means a newer
    generation: read that one (keeping what was read already: segments never change)."""
    reuse = dict(reuse)
    for attempt in range(RETRIES):
        state = file_state(folder / "meta.json")
        if state is None:
            return None
        try:
            meta = read_meta(folder / "meta.json", fmt, version)
            segments = []
            for info in meta["segments"]:
                key = (info["name"], info["dead_file"])
                segments.append(reuse.get(key) or read_segment(folder, info))
                reuse[key] = segments[-1]
            return meta, segments, state
        except FileNotFoundError:
            if attempt == RETRIES - 1 or file_state(folder / "meta.json") == state:
                raise  # nothing newer was committed: a file of this generation is lost
    raise AssertionError("unreachable")


def remove_unlisted(folder: Path, segments: Sequence[Segment]) -> None:
    """Delete segment folders and tombstone files the committed meta no longer lists."""
    live = {s.name: s for s in segments}
    for entry in folder.iterdir():
        if not entry.name.startswith("seg-"):
            continue
        segment = live.get(entry.name)
        if segment is None:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        for file in entry.glob("dead-*.npy"):
            if file.name != segment.dead_file:
                file.unlink(missing_ok=True)
    remove_stale_temps(folder)
