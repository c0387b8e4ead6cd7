"""Situated chunk encoders: a short chunk embedded by what it means in its context.

Modes (chosen by name, recorded beside an index so queries use the same one):

- ``plain``: the chunk text alone (the baseline);
- ``prefix``: "title > section" (+ an optional summary) before the chunk, for embedding only;
- ``sitemb``: the SitEmb input format (chunk, then its context) for any encoder; on SitEmb's own
  causal models (:class:`CausalSitEmbModel`) one pass gives the situated and the chunk vector;
- ``late``: late chunking (one forward pass per context window, chunk spans mean-pooled);
- ``contextual``: an LLM-written context that situates the chunk in its document, before it.

Any of them can be scored residually, ``sim(q, s) + alpha * sim(q, c)``
(:mod:`rag.encoders.situated.residual`)::

    from rag.encoders import load_encoder
    from rag.encoders.situated import get_situated, residual_vectors
    situated = get_situated("late", load_encoder("minilm"))
    vectors = situated.embed_chunks(chunks, chunk_vectors=True)
    index_vectors = residual_vectors(vectors.situated, vectors.chunk, alpha=0.5)
    query = situated.embed_query("...")            # score = index_vectors @ query

Light to import: numpy only; torch and transformers load when a model runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rag.encoders.situated.base import (
    PlainEncoder,
    Segment,
    SituatedEncoder,
    SituatedVectors,
    context_segments,
    header,
)
from rag.encoders.situated.causal import CausalSitEmbEncoder, CausalSitEmbModel
from rag.encoders.situated.contextual import ContextualEncoder
from rag.encoders.situated.late import LateChunkingEncoder
from rag.encoders.situated.prefix import PrefixEncoder, prefix_text
from rag.encoders.situated.residual import (
    DEFAULT_ALPHA,
    check_alpha,
    residual_scores,
    residual_vectors,
)
from rag.encoders.situated.sitemb import SITEMB_INSTRUCTION, SitEmbTextEncoder, sitemb_text
from rag.encoders.situated.trained import TrainedLateEncoder

if TYPE_CHECKING:
    from rag.base import Encoder
    from rag.types import Chunk


def _sitemb(base: Encoder, **options: Any) -> SituatedEncoder:
    if isinstance(base, CausalSitEmbModel):  # SitEmb's own model: both vectors in one pass
        if options:
            raise TypeError(f"options {sorted(options)} do not apply to a CausalSitEmbModel")
        return CausalSitEmbEncoder(base)
    return SitEmbTextEncoder(base, **options)


SITUATED_MODES: dict[str, Callable[..., SituatedEncoder]] = {
    "plain": PlainEncoder,
    "prefix": PrefixEncoder,
    "sitemb": _sitemb,
    "late": LateChunkingEncoder,
    "contextual": ContextualEncoder,
    "trained": TrainedLateEncoder,
}


def get_situated(mode: str, base: Encoder, **options: Any) -> SituatedEncoder:
    """The situated encoder ``mode`` over the dense encoder ``base`` (options go to its class:
    ``summaries=``/``summarize=`` for prefix, ``window=`` for sitemb, ``window_tokens=``,
    ``overlap_tokens=``, ``window_batch_size=`` for late; ``adapter=`` for trained, also
    written ``trained:ADAPTER`` with an adapter name or ``.npz`` path)."""
    name = check_mode(mode)
    _, _, argument = mode.partition(":")
    if argument:
        options = {**options, "adapter": argument}
    return SITUATED_MODES[name](base, **options)


def check_mode(mode: str) -> str:
    """The mode name of ``mode`` (``trained:ADAPTER`` names ``trained``), or a clear error."""
    name, colon, argument = mode.partition(":")
    if name not in SITUATED_MODES:
        raise ValueError(
            f"unknown situated mode {name!r}; choose one of: {', '.join(SITUATED_MODES)}"
        )
    if colon and (name != "trained" or not argument):
        raise ValueError(
            f"situated mode {mode!r}: only trained takes an argument (trained:ADAPTER)"
        )
    return name


def situated_text(chunk: Chunk, mode: str) -> str:
    """The text a text-only mode embeds for ``chunk`` (with no model at hand: sitemb's context is
    then cut to 512 tiktoken tokens). Late chunking has no such text: use
    ``get_situated(mode, encoder).embed_chunks``."""
    if mode == "plain":
        return chunk.text
    if mode == "prefix":
        return prefix_text(chunk)
    if mode == "sitemb":
        return sitemb_text(chunk, window=512)
    check_mode(mode)
    raise ValueError(f"situated mode {mode!r} has no per-chunk text; use embed_chunks")


def load_causal_sitemb(location: str, **options: Any) -> CausalSitEmbModel:
    """A SitEmb-style causal embedding model from a local folder (see ``causal``'s docstring)."""
    return CausalSitEmbModel(location, **options)


__all__ = [
    "DEFAULT_ALPHA",
    "SITEMB_INSTRUCTION",
    "SITUATED_MODES",
    "CausalSitEmbEncoder",
    "CausalSitEmbModel",
    "ContextualEncoder",
    "LateChunkingEncoder",
    "PlainEncoder",
    "PrefixEncoder",
    "Segment",
    "SitEmbTextEncoder",
    "TrainedLateEncoder",
    "SituatedEncoder",
    "SituatedVectors",
    "check_alpha",
    "check_mode",
    "context_segments",
    "get_situated",
    "header",
    "load_causal_sitemb",
    "prefix_text",
    "residual_scores",
    "residual_vectors",
    "situated_text",
    "sitemb_text",
]
