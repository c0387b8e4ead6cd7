"""What one evaluation runs: the protocol, chunking, situated modes, fusions and depth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.eval.metrics import DEFAULT_METRICS
from rag.eval.units import CHUNKINGS, DEFAULT_CHUNKER

Protocol = Literal["whole", "chunked"]
PROTOCOLS: tuple[str, ...] = ("whole", "chunked")


@dataclass
class EvalConfig:
    protocol: Protocol = "whole"
    chunk_tokens: int = 64
    chunker: str = DEFAULT_CHUNKER
    batch_size: int = 32
    k: int = 100
    metrics: tuple[str, ...] = DEFAULT_METRICS
    fusions: tuple[str, ...] = ()
    ignore_identical_ids: bool = False
    show_progress: bool = False
    chunking: str = "packed"
    situated: tuple[str, ...] = ()
    residual: float | None = None
    # Cache the document vectors of registry encoders on disk (rag.eval.cache).
    cache: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of: {PROTOCOLS}")
        if self.chunking not in CHUNKINGS:
            raise ValueError(f"unknown chunking {self.chunking!r}; choose one of: {CHUNKINGS}")
        if self.situated or self.residual is not None:
            self._check_situated()
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be at least 1, got {self.chunk_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")

    def _check_situated(self) -> None:
        from rag.encoders.situated import SITUATED_MODES, check_alpha, check_mode

        unknown = []
        for mode in self.situated:
            try:
                check_mode(mode)  # a mode name, or trained:ADAPTER
            except ValueError:
                unknown.append(mode)
        if unknown or len(set(self.situated)) != len(self.situated):
            raise ValueError(
                f"situated modes must be distinct names of {', '.join(SITUATED_MODES)}; "
                f"got {list(self.situated)}"
            )
        if self.protocol != "chunked":
            raise ValueError("situated encoders need the chunked protocol")
        if self.residual is not None:
            check_alpha(self.residual)
            if not any(m != "plain" for m in self.situated):
                raise ValueError("--residual needs a situated mode other than plain")
