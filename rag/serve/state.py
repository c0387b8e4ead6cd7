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
    generator_options: dict[str, Any] = field(default_factory=dict)


class ServerState:
    """The index and models behind every request of one server."""

    def __init__(self, settings: ServeSettings) -> None:
        from rag.index import Index

        self.settings = settings
        self.index = Index(settings.index)
        self._retrievers: dict[tuple[str | None, str], Any] = {}
        self._search_lock = threading.RLock()
        self._generator: Any = None
        self._generator_lock = threading.Lock()
        self.generation_lock = threading.Lock()
        self.jobs = IngestJobs(self)

    # -- retrieval -----------------------------------------------------------------------------

    def retriever(self, encoder: str | None = None, fusion: str = "default") -> Any:
        """A retriever over one encoder, or every encoder fused (built once, then reused)."""
        key = (encoder, fusion)
        with self._search_lock:
            if key not in self._retrievers:
                if not self.index.exists:
                    raise FileNotFoundError(
                        f"no index at {self.index.root}: ingest documents first"
                    )
                if encoder is None and len(self.index.config.encoders) > 1:
                    self._retrievers[key] = self.index.fused_retriever(fusion)
                else:
                    self._retrievers[key] = self.index.retriever(encoder)
            return self._retrievers[key]

    def search(
        self, query: str, k: int, *, encoder: str | None = None, fusion: str = "default"
    ) -> list[Hit]:
        with self._search_lock:
            return self.retriever(encoder, fusion).retrieve(query, k)

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
