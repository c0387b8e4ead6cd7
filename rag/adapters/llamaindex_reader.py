"""A LlamaIndex reader over our connectors (imports llama-index-core).

    from rag.adapters.llamaindex_reader import RagReader
    reader = RagReader()
    documents = reader.load_data("docs/")      # a folder (recursively) or one file
    reader.errors                              # the files that could not be read, and why

Files go through :mod:`connectors.directory` (format sniffed from the content, bounded reads,
PDF outlines and page labels, Markdown and HTML headings, DOCX), so LlamaIndex gets the same text
our index would. A file that cannot be read is logged and kept in ``errors`` rather than raised,
so one broken file does not stop a folder (``raise_errors=True`` raises instead). Paged formats
give one Document per page by default (as LlamaIndex's PDF readers do); ``split="file"`` gives
one per file. Metadata: ``source``, ``file_name``, ``title``, ``page`` (0-based) and
``page_label`` where there are pages, ``doc_id``, ``format``, ``content_hash``, and the section
structure for :class:`~rag.adapters.llamaindex_parser.RagNodeParser`; never ``None``. The LLM
and embedding views leave the bookkeeping out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import groupby
from pathlib import Path, PurePath
from typing import Any, Literal

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from connectors.directory import UnchangedFile, load_directory, load_file
from connectors.limits import Limits
from rag.adapters.metadata import (
    SPANS_KEY,
    embed_excluded_keys,
    llm_excluded_keys,
    spans_to_json,
)
from rag.types import Document as RagDocument
from rag.types import IngestError, Span

_log = logging.getLogger(__name__)

Split = Literal["page", "file"]


class ReadError(RuntimeError):
    """A file could not be read (raised only with ``raise_errors=True``)."""


def _base_metadata(doc: RagDocument) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "source": doc.source,
        "file_name": PurePath(doc.source).name,
        "title": doc.title,
        "doc_id": doc.id,
        "format": doc.metadata.get("format"),
        "content_hash": doc.content_hash,
    }
    return {k: v for k, v in meta.items() if isinstance(v, str) and v}


def _document(doc_id: str, text: str, meta: dict[str, Any], spans: Sequence[Span]) -> Document:
    meta = {**meta, SPANS_KEY: spans_to_json(list(spans))}
    return Document(
        id_=doc_id,
        text=text,
        metadata=meta,
        excluded_llm_metadata_keys=llm_excluded_keys(meta),
        excluded_embed_metadata_keys=embed_excluded_keys(meta),
    )


def to_llamaindex_documents(doc: RagDocument, split: Split = "page") -> list[Document]:
    """Our Document as LlamaIndex Documents: one, or one per page of a paged document (its
    text from the page's first span to its last, spans shifted to that text)."""
    meta = _base_metadata(doc)
    if split == "file" or all(s.page is None for s in doc.spans):
        return [_document(doc.id, doc.text, meta, doc.spans)]
    out = []
    for page, group in groupby(doc.spans, key=lambda s: s.page):
        spans = list(group)
        start, end = spans[0].start, spans[-1].end
        shifted = [replace(s, start=s.start - start, end=s.end - start) for s in spans]
        page_meta = dict(meta)
        suffix = ""
        if page is not None:
            page_meta["page"], page_meta["page_label"] = page - 1, str(page)
            suffix = f"#page={page}"
        doc_id = f"{doc.id}{suffix}"
        if any(d.id_ == doc_id for d in out):  # a page split by another page's text
            doc_id = f"{doc_id}@{start}"
        out.append(_document(doc_id, doc.text[start:end], page_meta, shifted))
    return out


class RagReader(BaseReader):
    """Reads files and folders with our connectors (see the module docstring).

    ``include``/``exclude``: globs over paths relative to a folder; ``format`` forces one
    connector; ``limits`` bounds each file (:class:`connectors.limits.Limits`).
    """

    def __init__(
        self,
        *,
        split: Split = "page",
        include: Sequence[str] = ("**/*",),
        exclude: Sequence[str] = (),
        format: str | None = None,
        limits: Limits | None = None,
        raise_errors: bool = False,
    ) -> None:
        if split not in ("page", "file"):
            raise ValueError(f"split must be 'page' or 'file', got {split!r}")
        self.split: Split = split
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.format = format
        self.limits = limits
        self.raise_errors = raise_errors
        self.errors: list[IngestError] = []

    def _parsed(self, path: Path) -> Iterator[RagDocument | IngestError | UnchangedFile]:
        if path.is_dir():
            yield from load_directory(
                path, self.include, self.exclude, format=self.format, limits=self.limits
            )
        elif path.exists():
            yield load_file(path, format=self.format, limits=self.limits)
        else:
            yield IngestError(str(path), "no such file or folder")

    def lazy_load_data(self, path: str | os.PathLike[str], **_: Any) -> Iterator[Document]:
        """The Documents under ``path``; unreadable files go to ``errors`` (reset per call)."""
        self.errors = []
        for item in self._parsed(Path(path)):
            if isinstance(item, IngestError):
                if self.raise_errors:
                    raise ReadError(f"{item.path}: {item.reason}")
                _log.warning("skipped %s: %s", item.path, item.reason)
                self.errors.append(item)
            elif isinstance(item, RagDocument):
                yield from to_llamaindex_documents(item, self.split)

    def load_data(self, path: str | os.PathLike[str], **kwargs: Any) -> list[Document]:
        return list(self.lazy_load_data(path, **kwargs))
