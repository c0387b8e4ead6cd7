"""The docstore's file for one document: its text stored once, its chunks as offsets into it.

A chunk's ``text`` and ``context`` are slices of its document (``Chunk`` says so), and the
context windows of neighbouring chunks overlap almost entirely: writing each chunk's context out
made the docstore 4-5x the text. Here the spans the chunks cover are merged into *regions*
(``[start, text]`` pairs, in document offsets), written once, and a chunk keeps its offsets; its
text and context are sliced back out when the file is read. A chunk whose text or context is not
the slice of its offsets (a chunker of a user's that rewrote it) keeps it inline, so every chunk
reads back exactly as it was written. ``doc_id``, ``source`` and ``title`` are stored once too.

Layout (``"layout": 2``; a chunk is a row, not an object: a 1,000-character chunk's keys
alone were a sixth of its size)::

    {"layout": 2, "doc_id": ..., "source": ..., "title": ...,
     "regions": [[start, text], ...], "sections": [[heading, ...], ...],
     "chunks": [[start, end, context_start, context_end, section_number, metadata], ...]}

A row has a seventh element, an object, for what cannot be derived: ``id`` (when it is not
``Chunk.make_id`` of the row), ``page``, and ``text``, ``context``, ``doc_id``, ``source``,
``title`` when they differ from the slices and the file's own.

Layout 1 (no ``"layout"`` key) kept every chunk whole (``rag.stores._codec.chunk_to_json``)
and is still read.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from rag.stores._codec import chunk_from_json, metadata_json
from rag.types import Chunk, Document

LAYOUT = 2


def _spans(chunks: Sequence[Chunk]) -> list[tuple[int, int, str]]:
    """Every (start, end, text) a chunk's text or context claims, where the length agrees."""
    out = []
    for c in chunks:
        if len(c.text) == c.end - c.start:
            out.append((c.start, c.end, c.text))
        if c.context and len(c.context) == c.context_end - c.context_start:
            out.append((c.context_start, c.context_end, c.context))
    return sorted(out, key=lambda s: (s[0], -s[1]))


def merge_regions(chunks: Sequence[Chunk]) -> list[tuple[int, str]]:
    """The document text the chunks cover, as disjoint ``(start, text)`` regions in order."""
    regions: list[tuple[int, list[str], int]] = []  # start, pieces, end
    for start, end, text in _spans(chunks):
        if regions and start <= regions[-1][2]:
            r_start, pieces, r_end = regions[-1]
            if end > r_end:
                pieces.append(text[r_end - start :])
                regions[-1] = (r_start, pieces, end)
        else:
            regions.append((start, [text], end))
    return [(start, "".join(pieces)) for start, pieces, _ in regions]


class Regions:
    """Slices of a document by its offsets, from the regions a chunk file stores."""

    def __init__(self, regions: Sequence[Sequence[Any]]) -> None:
        self.starts = [int(r[0]) for r in regions]
        self.texts = [str(r[1]) for r in regions]

    def slice(self, start: int, end: int) -> str | None:
        """``document.text[start:end]`` when one region covers it, else None."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0 or end > self.starts[i] + len(self.texts[i]):
            return None
        offset = start - self.starts[i]
        return self.texts[i][offset : offset + end - start]


def encode(doc: Document, chunks: Sequence[Chunk]) -> dict[str, Any]:
    """The chunk file of ``doc`` (``chunks`` in order)."""
    regions = merge_regions(chunks)
    view = Regions(regions)
    sections: dict[tuple[str, ...], int] = {}
    rows = []
    for c in chunks:
        metadata_json(c)  # refuses metadata that would not read back equal
        extra: dict[str, Any] = {}
        text = view.slice(c.start, c.end)
        if text != c.text:
            extra["text"] = text = c.text
        if not c.context or view.slice(c.context_start, c.context_end) != c.context:
            extra["context"] = c.context
        for name, default in (("doc_id", doc.id), ("source", doc.source), ("title", doc.title)):
            if getattr(c, name) != default:
                extra[name] = getattr(c, name)
        if c.id != Chunk.make_id(c.doc_id, c.start, c.end, text):
            extra["id"] = c.id
        if c.page is not None:
            extra["page"] = c.page
        section = sections.setdefault(c.section, len(sections))
        row = [c.start, c.end, c.context_start, c.context_end, section, c.metadata]
        rows.append([*row, extra] if extra else row)
    return {
        "layout": LAYOUT,
        "doc_id": doc.id,
        "source": doc.source,
        "title": doc.title,
        "regions": [[start, text] for start, text in regions],
        "sections": [list(s) for s in sections],
        "chunks": rows,
    }


class ChunkFile:
    """One parsed chunk file whose chunks are built when asked for (hydrating a few hits of a
    large document does not build its thousand chunks)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.view = Regions(data.get("regions", ()))
        self.sections = [tuple(s) for s in data.get("sections", ())]
        self._rows: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.data["chunks"])

    def chunks(self) -> list[Chunk]:
        if self.data.get("layout") is None:
            return [chunk_from_json(c) for c in self.data["chunks"]]
        return [self._chunk(i) for i in range(len(self))]

    def get(self, chunk_id: str) -> Chunk | None:
        if self.data.get("layout") is None:
            return next((c for c in self.chunks() if c.id == chunk_id), None)
        if self._rows is None:
            self._rows = {self._id(row): i for i, row in enumerate(self.data["chunks"])}
        row = self._rows.get(chunk_id)
        return None if row is None else self._chunk(row)

    def _id(self, row: list[Any]) -> str:
        extra = row[6] if len(row) > 6 else {}
        if "id" in extra:
            return extra["id"]
        text = extra["text"] if "text" in extra else self.view.slice(row[0], row[1]) or ""
        return Chunk.make_id(extra.get("doc_id", self.data["doc_id"]), row[0], row[1], text)

    def _chunk(self, i: int) -> Chunk:
        data, view = self.data, self.view
        start, end, c_start, c_end, section, metadata, *rest = data["chunks"][i]
        extra = rest[0] if rest else {}
        text = extra["text"] if "text" in extra else view.slice(start, end) or ""
        context = extra["context"] if "context" in extra else view.slice(c_start, c_end) or ""
        doc_id = extra.get("doc_id", data["doc_id"])
        return Chunk(
            id=extra.get("id") or Chunk.make_id(doc_id, start, end, text),
            doc_id=doc_id,
            text=text,
            start=start,
            end=end,
            source=extra.get("source", data["source"]),
            title=extra["title"] if "title" in extra else data.get("title"),
            section=self.sections[section],
            page=extra.get("page"),
            context=context,
            context_start=c_start,
            context_end=c_end,
            metadata=dict(metadata),
        )


def decode(data: dict[str, Any]) -> list[Chunk]:
    """The chunks of a chunk file, exactly as they were written (layout 1 or 2)."""
    return ChunkFile(data).chunks()
