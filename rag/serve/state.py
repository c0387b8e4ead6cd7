"""What a running server holds: one index with its models loaded once, the retrievers built
over it, the LLM (loaded on the first ask) and the background ingest jobs.

Requests run on the server's worker threads. Retrieval shares one lock: a search takes
milliseconds once the models are loaded, and the lock keeps an ingest job's store updates and
a search from interleaving inside one process. Generation has its own lock, so a long answer
never holds up searches.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.serve.jobs import IngestJobs
from rag.types import Hit


@dataclass
class ServeSettings:
    """How ``rag serve`` was started: the index, and the LLM that ``/ask`` uses."""

    index: Path
    generator: str = "transformers"
    model: str | None = None
    base_url: str | None = None
    max_new_tokens: int = 256
    allow_ingest: bool = True
    rerank: str | None = None  # a CrossEncoder model folder: rerank fused candidates with it
    rerank_candidates: int = 30
    generator_options: dict[str, Any] = field(default_factory=dict)


class ServerState:
    """The index and models behind every request of one server."""

    def __init__(self, settings: ServeSettings) -> None:
        from rag.index import Index

        self.settings = settings
        self.index = Index(settings.index)
        self._retrievers: dict[tuple[Any, ...], Any] = {}
        self._search_lock = threading.RLock()
        self._generator: Any = None
        self._reranker: Any = None
        self._generator_lock = threading.Lock()
        self.generation_lock = threading.Lock()
        self.jobs = IngestJobs(self.index, self.index_changed)

    # -- retrieval -----------------------------------------------------------------------------

    def retriever(
        self,
        encoder: str | None = None,
        fusion: str = "default",
        *,
        dedup: bool = True,
        mmr: float | None = None,
        rerank: bool = False,
    ) -> Any:
        """A retriever over one encoder, or every encoder fused, optionally followed by the
        server's cross-encoder (built once per combination, then reused)."""
        key = (encoder, fusion, dedup, mmr, rerank)
        with self._search_lock:
            if key not in self._retrievers:
                self._retrievers[key] = self._build_retriever(encoder, fusion, dedup, mmr, rerank)
            return self._retrievers[key]

    def _build_retriever(
        self, encoder: str | None, fusion: str, dedup: bool, mmr: float | None, rerank: bool
    ) -> Any:
        if not self.index.exists:
            raise FileNotFoundError(f"no index at {self.index.root}: ingest documents first")
        if encoder is None and len(self.index.config.encoders) > 1:
            found = self.index.fused_retriever(fusion, dedup=dedup, mmr=mmr)
        else:
            found = self.index.retriever(encoder, dedup=dedup, mmr=mmr)
        if not rerank:
            return found
        from rag.retrieval.rerank import RerankingRetriever

        return RerankingRetriever(
            found, self.reranker(), candidates=self.settings.rerank_candidates
        )

    def reranker(self) -> Any:
        """The cross-encoder the server was started with (``--rerank``), loaded once."""
        if self.settings.rerank is None:
            raise ValueError("this server has no reranker: start it with --rerank MODEL_FOLDER")
        with self._generator_lock:
            if self._reranker is None:
                from rag.retrieval.rerank import CrossEncoderReranker

                self._reranker = CrossEncoderReranker(self.settings.rerank)
            return self._reranker

    def search(
        self,
        query: str,
        k: int,
        *,
        encoder: str | None = None,
        fusion: str = "default",
        where: Any = None,
        dedup: bool = True,
        mmr: float | None = None,
        rerank: bool | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The top ``k`` hits; ``where`` a filter dict (:class:`rag.retrieval.filters.Where`),
        ``rerank`` None: rerank when the server has a reranker; ``min_score`` cuts on
        relevance."""
        from rag.retrieval.filters import Where
        from rag.retrieval.relevance import above

        use_rerank = self.settings.rerank is not None if rerank is None else rerank
        where = Where.coerce(where) if where else None
        retriever = self.retriever(encoder, fusion, dedup=dedup, mmr=mmr, rerank=use_rerank)
        with self._search_lock:
            hits = retriever.retrieve(query, k, where=where)
        return above(hits, min_score)

    def index_changed(self) -> None:
        """Drop the retrievers after this process changed the index (they are rebuilt lazily;
        the encoders' models stay loaded on the index)."""
        with self._search_lock:
            self._retrievers.clear()

    def encoder_names(self) -> list[str]:
        return self.index.config.names() if self.index.exists else []

    def check_encoder(self, encoder: str | None) -> None:
        names = self.encoder_names()
        if encoder is not None and encoder not in names:
            raise ValueError(f"unknown encoder {encoder!r}; this index has: {', '.join(names)}")

    # -- answering -----------------------------------------------------------------------------

    def generator(self) -> Any:
        """The LLM, loaded on the first ask and shared by every later one."""
        with self._generator_lock:
            if self._generator is None:
                self._generator = self._build_generator()
            return self._generator

    def _build_generator(self) -> Any:
        from rag.generation import get_generator

        s = self.settings
        options = dict(s.generator_options)
        if s.generator == "transformers":
            return get_generator("transformers", model_path=s.model, **options)
        if s.generator == "llamacpp":
            return get_generator("llamacpp", model_path=s.model, **options)
        if s.generator == "openai":
            if not s.base_url or not s.model:
                raise ValueError("the openai generator needs --base-url and --model")
            return get_generator("openai", base_url=s.base_url, model=s.model, **options)
        return get_generator(s.generator, **options)

    def strategy(
        self,
        name: str,
        *,
        k: int,
        metric: str,
        encoders: list[str] | None,
        abstain_below: float | None,
        max_new_tokens: int | None,
    ) -> Any:
        """An answering strategy over this index's retrievers (see :mod:`rag.answering`)."""
        from rag.answering.registry import make_strategy

        for encoder in encoders or []:
            self.check_encoder(encoder)
        retrievers = []
        if name != "llm":
            names = encoders or self.encoder_names()
            retrievers = [self.retriever(n) for n in (names[:1] if name == "vanilla" else names)]
        return make_strategy(
            name,
            self.generator(),
            retrievers,
            k=k,
            metric=metric,
            threshold=abstain_below,
            max_new_tokens=max_new_tokens or self.settings.max_new_tokens,
        )
