"""The BM25 store's files (layout in ``rag.stores.bm25``) and its input checks.

Segment files are written once, fsynced, and checked against ``meta.json`` when read back;
arrays are ``.npy`` loaded with ``allow_pickle=False``; chunks are JSON lines (the one chunk
codec, ``rag.stores._codec``), read only when a chunk is first needed.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.files import fsync_dir, write_synced
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


def write_segment(folder: Path, segment: Segment) -> None:
    path = folder / segment.name
    if path.exists():  # an uncommitted leftover of a killed write
        shutil.rmtree(path)
    path.mkdir(parents=True)
    lines = segment.docs.json_lines()
    write_synced(path / "chunks.jsonl", b"".join(line + b"\n" for line in lines))
    rows = {"ids": segment.docs.ids, "doc_ids": segment.docs.doc_ids, "terms": segment.terms}
    write_synced(path / "segment.json", json.dumps(rows, ensure_ascii=False).encode("utf-8"))
    write_synced(path / "tf_indptr.npy", _npy(segment.indptr.astype(np.int64, copy=False)))
    write_synced(path / "postings.npy", _npy(np.stack([segment.rows, segment.tf]).astype(np.int32)))
    write_synced(path / "doc_len.npy", _npy(segment.doc_len.astype(np.int32, copy=False)))
    fsync_dir(path)
    fsync_dir(folder)


def lines_reader(folder: Path, segment: Segment) -> Callable[[], list[bytes]]:
    """Reads ``segment``'s chunks as JSON lines, when they are first needed."""
    path, rows = folder / segment.name / "chunks.jsonl", segment.n_docs

    def read() -> list[bytes]:
        lines = path.read_bytes().split(b"\n")[:-1]  # JSON escapes every newline in a chunk
        if len(lines) != rows:
            raise ValueError(f"{path} has {len(lines)} lines, expected {rows}")
        return lines

    return read


def write_dead(folder: Path, segment: Segment, number: int) -> None:
    """Write ``segment``'s tombstones to a new file and record its name on the segment."""
    name = f"dead-{number:06d}.npy"
    path = folder / segment.name
    write_synced(path / name, _npy(segment.dead.astype(np.int32, copy=False)))
    fsync_dir(path)
    segment.dead_file = name


def read_segment(folder: Path, info: dict[str, Any]) -> Segment:
    path = folder / info["name"]
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
        ("postings", postings, np.int32, (2, n)),
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
        postings[0],
        postings[1],
        doc_len,
        dead=dead,
        written=True,
        dead_file=info["dead_file"],
    )
    segment.docs.read = lines_reader(folder, segment)
    return segment


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
