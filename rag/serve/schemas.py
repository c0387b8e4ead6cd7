"""Request bodies of the HTTP API (pydantic models: FastAPI validates them and answers 422 with
the field that is wrong)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SearchRequest(BaseModel):
    """``POST /search``."""

    query: str = Field(min_length=1, max_length=10_000, description="what to look for")
    k: int = Field(5, ge=1, le=200, description="how many hits")
    encoder: str | None = Field(None, description="one of the index's encoders (default: fused)")
    fusion: str = Field("default", description="fusion method when several encoders")
    where: dict[str, Any] | None = Field(
        None,
        description="filters: source (glob), type (file extension), page ('3-5'), section",
    )
    dedup: bool = Field(True, description="collapse near-identical chunks into one hit")
    mmr: float | None = Field(None, ge=0, le=1, description="MMR lambda for diverse hits")
    rerank: bool | None = Field(
        None, description="rerank with the server's cross-encoder (default: when it has one)"
    )
    min_score: float | None = Field(None, ge=0, le=1, description="drop hits below relevance")
    context: bool = Field(True, description="include each hit's context window")


class AskRequest(BaseModel):
    """``POST /ask``."""

    question: str = Field(min_length=1, max_length=10_000)
    strategy: str = Field("confident", description="llm, vanilla, mixture or confident")
    metric: str = Field("self_certainty", description="confidence metric for selection")
    k: int = Field(4, ge=1, le=50, description="sources per answer")
    encoders: list[str] | None = Field(None, description="encoders to use (default: all)")
    abstain_below: float | None = Field(None, description="abstain below this confidence")
    max_new_tokens: int | None = Field(None, ge=1, le=4096)
    stream: bool = Field(True, description="server-sent events (token, answer) or one JSON")


class IngestRequest(BaseModel):
    """``POST /ingest``: a file or folder on the server's machine."""

    path: str = Field(min_length=1)
    prune: bool = Field(False, description="remove indexed files under path that are gone")
