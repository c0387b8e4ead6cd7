"""A LlamaIndex ``NodeParser`` that cuts Documents with our chunkers (imports llama-index-core).

    from rag.adapters.llamaindex_parser import RagNodeParser
    nodes = RagNodeParser(max_tokens=128).get_nodes_from_documents(documents)
    VectorStoreIndex(nodes, embed_model=RagEmbedding("minilm"))

Our chunkers keep exact offsets, never cross a section and record each chunk's context span, so
a node's ``start_char_idx``/``end_char_idx`` index its document's text exactly (LlamaIndex's
base class re-finds node text with ``str.find``, which a repeated passage fools: the chunker's
offsets are put back). Sections come from the structure :class:`RagReader
<rag.adapters.llamaindex_reader.RagReader>` recorded, else from Markdown headings for Markdown
files, else none. Node metadata: ``section``, ``page``/``page_label`` (where known),
``context_start``/``context_end`` and ``context`` (the span's text, for situated embedding),
plus the document's metadata; the LLM and embedding views leave context and bookkeeping out
(:mod:`rag.adapters.metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, MetadataMode, NodeRelationship, TextNode
from llama_index.core.utils import get_tqdm_iterable

from connectors.common import build_spans
from connectors.markdown import heading_marks
from rag.adapters.metadata import (
    SPANS_KEY,
    embed_excluded_keys,
    llm_excluded_keys,
    spans_from_json,
)
from rag.base import Chunker
from rag.chunking import DEFAULT_CHUNKER, DEFAULT_CONTEXT_TOKENS, DEFAULT_MAX_TOKENS, get_chunker
from rag.types import Chunk, Span, sha256_hex
from rag.types import Document as RagDocument

SECTION_SEPARATOR = " > "
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")


def _str(meta: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _spans(text: str, meta: dict[str, Any], markdown: bool | None) -> list[Span]:
    """The document's structure: as the reader recorded it, else Markdown headings (for
    Markdown files, or always with ``markdown=True``), else one span on the metadata's page."""
    if isinstance(meta.get(SPANS_KEY), str):
        return spans_from_json(meta[SPANS_KEY])
    name = _str(meta, "file_name", "source", "file_path") or ""
    if markdown or (
        markdown is None
        and (name.lower().endswith(MARKDOWN_SUFFIXES) or meta.get("format") == "markdown")
    ):
        marks, _ = heading_marks(text)
        return build_spans(text, marks)
    page = meta.get("page")
    if isinstance(page, int) and not isinstance(page, bool) and text.strip():
        return [Span(0, len(text), (), page + 1)]  # metadata pages are 0-based, ours 1-based
    return []


def to_rag_document(node: BaseNode, markdown: bool | None = None) -> RagDocument:
    """A LlamaIndex Document (or any text node) as ours: same id, text and structure."""
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    meta = node.metadata
    source = _str(meta, "source", "file_path") or node.node_id
    title = _str(meta, "title")
    if title is None and _str(meta, "file_name"):
        title = PurePath(meta["file_name"]).stem
    return RagDocument(
        id=node.node_id,
        text=text,
        source=source,
        content_hash=sha256_hex(text),
        title=title,
        spans=_spans(text, meta, markdown),
    )


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """A chunk's own metadata (flat scalars, no ``None``): section, page, context span."""
    meta: dict[str, Any] = {}
    if chunk.section:
        meta["section"] = SECTION_SEPARATOR.join(chunk.section)
    if chunk.page is not None:
        meta["page"], meta["page_label"] = chunk.page - 1, str(chunk.page)
    meta["context_start"], meta["context_end"] = chunk.context_start, chunk.context_end
    if chunk.context:
        meta["context"] = chunk.context
    return meta


def node_chunk(node: BaseNode) -> Chunk:
    """A parsed node back as our Chunk (for the situated encoders, which read the context)."""
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    meta = node.metadata
    start = getattr(node, "start_char_idx", None) or 0
    section = _str(meta, "section")
    label = meta.get("page_label")
    return Chunk(
        id=node.node_id,
        doc_id=node.ref_doc_id or node.node_id,
        text=text,
        start=start,
        end=start + len(text),
        source=_str(meta, "source", "file_path") or "",
        title=_str(meta, "title"),
        section=tuple(section.split(SECTION_SEPARATOR)) if section else (),
        page=int(label) if isinstance(label, str) and label.isdigit() else None,
        context=_str(meta, "context") or "",
        context_start=int(meta.get("context_start", start)),
        context_end=int(meta.get("context_end", start + len(text))),
    )


def _unique(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(keys))


class RagNodeParser(NodeParser):
    """Nodes cut by one of our chunkers (``"recursive"``, ``"sentence"``, ``"token"``).

    ``max_tokens`` (tiktoken tokens per chunk), ``context_tokens`` and ``context_mode``
    (``"section"`` or ``"window"``) are the chunker's; ``chunker_options`` any other of its
    settings. ``markdown``: read Markdown headings as sections (None: for Markdown files).
    """

    chunker: str = Field(default=DEFAULT_CHUNKER, description="Our chunker's name.")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, description="Tokens per chunk at most.")
    context_tokens: int = Field(default=DEFAULT_CONTEXT_TOKENS, description="Context budget.")
    context_mode: str = Field(default="section", description="'section' or 'window'.")
    chunker_options: dict[str, Any] = Field(default_factory=dict)
    markdown: bool | None = Field(default=None, description="Sections from Markdown headings.")
    _chunker: Chunker = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._chunker = get_chunker(  # fails here, not at the first document, on a bad setting
            self.chunker,
            max_tokens=self.max_tokens,
            context_tokens=self.context_tokens,
            context_mode=self.context_mode,
            **self.chunker_options,
        )

    @classmethod
    def class_name(cls) -> str:
        return "RagNodeParser"

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        parsed: list[BaseNode] = []
        for node in get_tqdm_iterable(nodes, show_progress, "Parsing nodes"):
            source = node.as_related_node_info()
            for chunk in self._chunker.chunk(to_rag_document(node, self.markdown)):
                parsed.append(
                    TextNode(
                        id_=chunk.id,  # content-derived: re-parsing gives the same ids
                        text=chunk.text,
                        start_char_idx=chunk.start,
                        end_char_idx=chunk.end,
                        metadata=chunk_metadata(chunk),
                        relationships={NodeRelationship.SOURCE: source},
                    )
                )
        return parsed

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        """The base class's (document metadata, prev/next links), then the chunker's exact
        offsets back, the document's structure dropped, and the views' excluded keys set."""
        offsets = [(n.start_char_idx, n.end_char_idx) for n in nodes if isinstance(n, TextNode)]
        nodes = super()._postprocess_parsed_nodes(nodes, parent_doc_map)
        for node, (start, end) in zip(nodes, offsets, strict=True):
            assert isinstance(node, TextNode)
            node.start_char_idx, node.end_char_idx = start, end
            node.metadata.pop(SPANS_KEY, None)
            parent = parent_doc_map.get(node.ref_doc_id or "")
            llm = parent.excluded_llm_metadata_keys if parent is not None else []
            embed = parent.excluded_embed_metadata_keys if parent is not None else []
            node.excluded_llm_metadata_keys = _unique(
                [*llm, *llm_excluded_keys(node.metadata), SPANS_KEY]
            )
            node.excluded_embed_metadata_keys = _unique(
                [*embed, *embed_excluded_keys(node.metadata), SPANS_KEY]
            )
        return nodes
