"""``contextual``: an LLM writes one or two sentences that situate each chunk in its document, and
``context + "\\n\\n" + chunk`` is embedded (for embedding only: the stored chunk text is unchanged).

Contextual retrieval as in Anthropic's "Introducing Contextual Retrieval" (September 2024): the
prompt gives the document, then the chunk, and asks for "a short succinct context to situate this
chunk within the overall document for the purposes of improving search retrieval".

Cost is kept down three ways. The prompt puts the document first, and a document's chunks are sent
together in one ``generate_many`` call, so a backend that shares the common prefix of a batch (the
transformers backend does) reads the document once. A document longer than
``max_document_tokens`` is cut into half-overlapping windows of that many tokens, and each chunk
gets the window it sits most centrally in, so chunks of the same window still share a prefix.
Contexts are kept in a JSON file (:class:`ContextCache`) keyed by chunk id, document content
hash, generator name and prompt version, so a re-ingest or re-evaluation generates nothing.
A failed generation (:class:`~rag.generation.base.GenerationError`) leaves that document's
chunks embedded plain, with a warning; the other documents go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from rag.encoders.situated.base import (
    ChunkBatch,
    SituatedEncoder,
    TokenSpans,
    context_segments,
    token_spans_for,
)
from rag.files import write_json_atomic
from rag.generation.base import GenerationError
from rag.types import Chunk, Document, sha256_hex

if TYPE_CHECKING:
    from rag.base import Encoder
    from rag.generation.base import Generator

logger = logging.getLogger(__name__)

PROMPT_VERSION = "anthropic-2024.1"
CACHE_FORMAT = "rag.contextual-cache"
CACHE_VERSION = 1
TRUNCATED = "[...]"
# Anthropic's prompt, with the document first so that one document's prompts share a long prefix.
DOCUMENT_PROMPT = "<document>\n{document}\n</document>\n"
CHUNK_PROMPT = (
    "Here is the chunk we want to situate within the whole document\n"
    "<chunk>\n{chunk}\n</chunk>\n"
    "Please give a short succinct context to situate this chunk within the overall document "
    "for the purposes of improving search retrieval of the chunk. "
    "Answer only with the succinct context and nothing else."
)
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:succinct\s+)?context\s*:\s*(?:\*\*)?\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def contextual_prompt(document: str, chunk: str) -> str:
    """The prompt for one chunk: the document (or its window), then the chunk, then the ask."""
    return DOCUMENT_PROMPT.format(document=document) + CHUNK_PROMPT.format(chunk=chunk)


def contextual_text(chunk_text: str, context: str) -> str:
    """The embedded text: the context, a blank line, the chunk (the chunk alone without one)."""
    return f"{context}\n\n{chunk_text}" if context else chunk_text


def clean_context(text: str, truncated: bool = False) -> str:
    """The generated text as a context: its first paragraph, without a "Context:" label or
    quotes; a generation cut by the token limit ends at its last full sentence when it has one."""
    text = _LABEL.sub("", text.strip()).split("\n\n", 1)[0].strip().strip('"').strip()
    if truncated:
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends and ends[-1] >= 20:
            text = text[: ends[-1]]
    return " ".join(text.split())


def default_cache_dir() -> Path:
    """``$RAG_CACHE_DIR/contextual`` (default ``~/.cache/situated-rag/contextual``)."""
    from rag.offline import cache_root

    return cache_root() / "contextual"


class ContextCache:
    """Generated contexts by key, in one JSON file (``path=None``: in memory only).

    ``save`` merges what another process wrote meanwhile and replaces the file atomically."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: dict[str, str] = self._read()
        self.dirty = False

    @staticmethod
    def key(chunk_id: str, content_hash: str, generator: str, version: str) -> str:
        parts = (CACHE_FORMAT, chunk_id, content_hash, generator, version)
        return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:40]

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def put(self, key: str, context: str) -> None:
        self.entries[key] = context
        self.dirty = True

    def __len__(self) -> int:
        return len(self.entries)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        merged = {**self._read(), **self.entries}
        data = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "entries": merged}
        write_json_atomic(self.path, data)
        self.entries, self.dirty = merged, False

    def _read(self) -> dict[str, str]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable context cache %s: %s", self.path, exc)
            return {}
        if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            return {}
        return {str(k): str(v) for k, v in dict(data.get("entries") or {}).items()}


@dataclass
class ContextStats:
    """What the encoder did so far: contexts generated, taken from the cache, failed; the
    ``generate_many`` calls and their seconds."""

    generated: int = 0
    cached: int = 0
    failed: int = 0
    calls: int = 0
    generation_seconds: float = 0.0


@dataclass
class _Source:
    """A document as the prompts see it, and where each of its chunks lies in its text."""

    document: Document
    focus: dict[int, tuple[int, int]]  # batch index -> character range in document.text
    spans: list[tuple[int, int]] | None = None  # its tokens' characters, once needed


class ContextualEncoder(SituatedEncoder):
    """Embeds ``context + "\\n\\n" + chunk`` where a Generator wrote the context.

    ``generator=None`` uses the offline default, SmolLM2-135M-Instruct through transformers
    (built at once, loaded on the first generation, 16 prompts decoded together). ``cache``: a
    :class:`ContextCache`, a JSON file path, ``False`` (memory only) or ``None``
    (``$RAG_CACHE_DIR/contextual/<generator>.json``).
    """

    mode = "contextual"
    default_batch_size = 32
    save_every_seconds = 30.0

    def __init__(
        self,
        base: Encoder,
        generator: Generator | None = None,
        *,
        cache: ContextCache | str | os.PathLike[str] | bool | None = None,
        max_new_tokens: int = 64,
        max_document_tokens: int = 1024,
    ) -> None:
        if max_new_tokens < 1 or max_document_tokens < 1:
            raise ValueError("max_new_tokens and max_document_tokens must be at least 1")
        if generator is None:
            from rag.generation.transformers import TransformersGenerator

            generator = TransformersGenerator(batch_size=16)  # a document's chunks together
        self.base = base
        self.generator = generator
        self.max_new_tokens = max_new_tokens
        self.max_document_tokens = max_document_tokens
        self.generator_name = str(getattr(generator, "name", type(generator).__name__))
        if isinstance(cache, ContextCache):
            self.cache = cache
        elif cache is False:
            self.cache = ContextCache(None)
        elif cache is None or cache is True:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.generator_name) or "generator"
            self.cache = ContextCache(default_cache_dir() / f"{slug}.json")
        else:
            self.cache = ContextCache(cache)
        self.stats = ContextStats()
        self._spans: TokenSpans | None = None

    @property
    def version(self) -> str:
        """The prompt version in the cache key (the template and both token budgets)."""
        return f"{PROMPT_VERSION}/doc{self.max_document_tokens}/new{self.max_new_tokens}"

    def options(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "generator": self.generator_name,
            "max_new_tokens": self.max_new_tokens,
            "max_document_tokens": self.max_document_tokens,
            "prompt_version": PROMPT_VERSION,
        }

    def situated_vectors(self, batch: ChunkBatch) -> np.ndarray:
        chunks = batch.chunks
        contexts = self.contexts(chunks, batch.documents, show_progress=batch.show_progress)
        texts = [contextual_text(c.text, ctx) for c, ctx in zip(chunks, contexts, strict=True)]
        return self._embed_texts(texts, batch)

    def contexts(
        self,
        chunks: Sequence[Chunk],
        documents: Mapping[str, Document] | None = None,
        *,
        show_progress: bool = False,
    ) -> list[str]:
        """Each chunk's context: from the cache, else generated (``""`` where generation failed).

        ``documents`` (by id) give the whole documents; without them a document is rebuilt from
        its chunks' context windows."""
        sources = self._sources(chunks, documents or {})
        out = [""] * len(chunks)
        keys = [
            ContextCache.key(
                c.id, sources[c.doc_id].document.content_hash, self.generator_name, self.version
            )
            for c in chunks
        ]
        groups: dict[tuple[str, int, int], list[int]] = {}  # (doc, window) -> batch rows
        first_row: dict[str, int] = {}  # a chunk repeated in the batch is generated once
        for i, key in enumerate(keys):
            found = self.cache.get(key)
            if found is not None:
                out[i] = found
                self.stats.cached += 1
            elif first_row.setdefault(key, i) == i:
                start, end = self._window(sources[chunks[i].doc_id], i)
                groups.setdefault((chunks[i].doc_id, start, end), []).append(i)
        failures: dict[str, str] = {}
        last_save = time.perf_counter()
        try:
            for (doc_id, start, end), rows in _progress(groups.items(), show_progress):
                document = _window_text(sources[doc_id].document, start, end)
                prompts = [contextual_prompt(document, chunks[i].text) for i in rows]
                try:
                    generated = self._generate(prompts)
                except GenerationError as exc:
                    failures.setdefault(doc_id, str(exc))
                    self.stats.failed += len(rows)
                    continue
                for i, context in zip(rows, generated, strict=True):
                    out[i] = context
                    self.cache.put(keys[i], context)
                if time.perf_counter() - last_save > self.save_every_seconds:
                    self.cache.save()
                    last_save = time.perf_counter()
        finally:  # what was generated is kept, even when an unexpected error stops the loop
            self.cache.save()
        out = [out[first_row.get(key, i)] for i, key in enumerate(keys)]  # fill the repeats
        if failures:
            doc_id, reason = next(iter(failures.items()))
            message = (
                f"contextual: generation failed for {len(failures)} document(s), whose chunks "
                f"are embedded without context; first: {doc_id}: {reason}"
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        return out

    # -- helpers -------------------------------------------------------------------------------

    def _generate(self, prompts: list[str]) -> list[str]:
        """One ``generate_many`` call for prompts that share their document prefix."""
        t0 = time.perf_counter()
        results = self.generator.generate_many(
            prompts, max_new_tokens=self.max_new_tokens, temperature=0.0, top_k_logprobs=0
        )
        self.stats.calls += 1
        self.stats.generation_seconds += time.perf_counter() - t0
        if len(results) != len(prompts):
            raise GenerationError(f"{len(results)} generations for {len(prompts)} prompts")
        self.stats.generated += len(prompts)
        return [clean_context(g.text, g.finish_reason == "length") for g in results]

    def _sources(
        self, chunks: Sequence[Chunk], documents: Mapping[str, Document]
    ) -> dict[str, _Source]:
        """Each chunk's document (given, else rebuilt from its chunks' context windows, joined
        by blank lines, its hash that of the rebuilt text) and each chunk's place in it."""
        sources = {
            doc_id: _Source(documents[doc_id], {})
            for doc_id in dict.fromkeys(c.doc_id for c in chunks if c.doc_id in documents)
        }
        for i, c in enumerate(chunks):
            if c.doc_id in sources:
                sources[c.doc_id].focus[i] = _locate(sources[c.doc_id].document.text, c)
        rows = [i for i, c in enumerate(chunks) if c.doc_id not in documents]
        pieces: dict[str, list[str]] = {}
        focus: dict[str, dict[int, tuple[int, int]]] = {}
        for segment in context_segments([chunks[i] for i in rows]):
            parts = pieces.setdefault(segment.doc_id, [])
            offset = sum(len(p) + 2 for p in parts)  # the "\n\n" between segments
            parts.append(segment.text)
            for j in segment.chunks:
                c = chunks[rows[j]]
                lo = offset + c.start - segment.start
                focus.setdefault(c.doc_id, {})[rows[j]] = (lo, lo + len(c.text))
        for doc_id, parts in pieces.items():
            first = chunks[min(focus[doc_id])]
            text = "\n\n".join(parts)
            document = Document(doc_id, text, first.source, sha256_hex(text), title=first.title)
            sources[doc_id] = _Source(document, focus[doc_id])
        return sources

    def _window(self, source: _Source, index: int) -> tuple[int, int]:
        text, budget = source.document.text, self.max_document_tokens
        if len(text.encode("utf-8")) <= budget:  # a byte-level token covers >= 1 byte: fits
            return 0, len(text)
        if source.spans is None:
            if self._spans is None:
                self._spans = self._token_spans()
            source.spans = self._spans(text)
        return aligned_window(source.spans, source.focus[index], budget, len(text))

    def _token_spans(self) -> TokenSpans:
        """The generator's own tokenisation when it is a local transformers model, else
        tiktoken's (a close enough count for a budget)."""
        from rag.generation.transformers import TransformersGenerator

        if isinstance(self.generator, TransformersGenerator):
            _, tokenizer = self.generator.load()
            return token_spans_for(cast(Any, SimpleNamespace(tokenizer=tokenizer)))
        return token_spans_for(None)


def aligned_window(
    spans: Sequence[tuple[int, int]], focus: tuple[int, int], budget: int, length: int
) -> tuple[int, int]:
    """The character range of the ``budget``-token window holding ``focus`` most centrally,
    among windows starting every ``budget // 2`` tokens (the last one ends with the text), so
    that nearby chunks get the same window and their prompts share it as a prefix."""
    n = len(spans)
    if n <= budget:
        return 0, length
    first = next((i for i, (_, e) in enumerate(spans) if e > focus[0]), n - 1)
    last = max(first, max((i for i, (s, _) in enumerate(spans) if s < focus[1]), default=first))
    stride = max(1, budget // 2)
    starts = [*range(0, n - budget, stride), n - budget]
    holding = [s for s in starts if s <= first and last < s + budget] or starts
    centre = (first + last) / 2
    best = min(holding, key=lambda s: abs(s + (budget - 1) / 2 - centre))
    return spans[best][0], spans[best + budget - 1][1]


def _window_text(document: Document, start: int, end: int) -> str:
    """The document as the prompt shows it: its title, then the window, marked where cut."""
    text = document.text[start:end].strip()
    if start > 0:
        text = f"{TRUNCATED} {text}"
    if end < len(document.text.rstrip()):
        text = f"{text} {TRUNCATED}"
    return f"{document.title}\n\n{text}" if document.title else text


def _locate(text: str, chunk: Chunk) -> tuple[int, int]:
    """Where the chunk lies in its document's text: its offsets, else the first match."""
    if text[chunk.start : chunk.end] == chunk.text:
        return chunk.start, chunk.end
    at = text.find(chunk.text)
    return (at, at + len(chunk.text)) if at >= 0 else (0, 0)


def _progress(items: Any, show: bool) -> Any:
    if not show:
        return items
    import sys

    from tqdm.auto import tqdm

    return tqdm(list(items), desc="contextual", unit="doc", file=sys.stderr)
