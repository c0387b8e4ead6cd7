"""An index folder's relevance model (:mod:`rag.retrieval.relevance`): ``relevance.json``.

Fitted on 256 pseudo-queries from the index's own chunks at the first search after the content
changed (a fit costs about 256 queries per encoder plus a few milliseconds of arithmetic), then
kept in the folder as JSON with the content state it fits, and in memory per index object.
``index`` is a :class:`rag.index.folder.Index` (typed ``Any``: naming it here would tie the
two modules in a cycle).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from rag.retrieval.relevance import RelevanceModel

FILE = "relevance.json"
QUERIES = 256
DEPTH = 100  # the fused retriever's default candidates: the cut-off the fit sees
R = TypeVar("R")

_LOCK = threading.Lock()  # one fit at a time; concurrent searches wait for it
# index object -> (what was checked, the model): the folder is re-checked when it changes
_CACHE: weakref.WeakKeyDictionary[Any, tuple[Any, RelevanceModel | None]] = (
    weakref.WeakKeyDictionary()
)


def content_state(index: Any) -> str:
    """A digest of what the fit depends on: encoders, store, and every file's chunk ids."""
    files = index.docstore.files
    data = {
        "encoders": [repr(e) for e in index.config.encoders],
        "store": index.config.store,
        "files": {doc: sorted(entry.get("chunk_ids", [])) for doc, entry in sorted(files.items())},
    }
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _seen(index: Any) -> Any:
    from rag.files import file_state

    return (file_state(index.root / "manifest.json"), tuple(index.config.names()))


def relevance_model(index: Any) -> RelevanceModel | None:
    """The model for ``index`` as it is now: from memory, from ``relevance.json`` when it fits
    this content, else fitted and saved. None for an empty or tiny index."""
    seen = _seen(index)
    cached = _CACHE.get(index)
    if cached is not None and cached[0] == seen:
        return cached[1]
    with _LOCK:
        cached = _CACHE.get(index)
        if cached is not None and cached[0] == seen:
            return cached[1]
        state = content_state(index)
        model = _load(index, state)
        if model is None:
            model = fit_index(index, state)
            if model is not None:
                # a read-only folder still searches, refitting once per process
                with contextlib.suppress(OSError):
                    model.save(index.root / FILE)
        _CACHE[index] = (seen, model)
        return model


def _load(index: Any, state: str) -> RelevanceModel | None:
    from rag.retrieval.relevance import RelevanceModel

    path = index.root / FILE
    try:
        model = RelevanceModel.load(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or of another version: refit
    return model if model.state == state else None


def fit_index(index: Any, state: str = "") -> RelevanceModel | None:
    """Fit on pseudo-queries from the index's chunks, through retrievers without relevance."""
    import numpy as np

    from rag.index.search import encoder_retriever
    from rag.retrieval.relevance import calibrate_relevance

    # Read documents in a random order until there are enough chunks to draw queries from, not
    # the whole docstore (100k chunks took seconds, and their memory grew with the corpus).
    docs = sorted(index.docstore.files)
    chunks: list[Chunk] = []
    for i in np.random.default_rng(0).permutation(len(docs)).tolist():
        if len(chunks) >= 4 * QUERIES:
            break
        chunks += index.docstore.chunks_of(docs[i])
    if not chunks:
        return None
    retrievers = [
        encoder_retriever(index, name, dedup=False, mmr=None) for name in index.config.names()
    ]
    return calibrate_relevance(retrievers, chunks, queries=QUERIES, depth=DEPTH, state=state)


class RelevanceHook:
    """What an index's retrievers call to fill ``Hit.relevance``: ``hook(hits, runs)``, with
    the encoders' candidate lists ``runs`` for fused hits."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def __call__(
        self, hits: Sequence[Hit], runs: Mapping[str, Sequence[Hit]] | None = None
    ) -> list[Hit]:
        model = relevance_model(self.index)
        return list(hits) if model is None else model.apply(hits, runs)


def with_relevance(index: Any, retriever: R) -> R:
    """``retriever`` (one the index built) filling ``Hit.relevance`` from the index's model."""
    retriever.relevance = RelevanceHook(index)  # type: ignore[attr-defined]
    return retriever
