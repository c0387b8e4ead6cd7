"""The HTTP API of ``rag serve`` (FastAPI on uvicorn): search, ask, ingest, info, health, and a
search page at ``/``. The OpenAPI description is at ``/openapi.json`` (browsable at ``/docs``).

Contract names (other tools call them): ``GET /health``; ``POST /search`` with a JSON body
``{"query": ..., "k": ...}`` answering ``{"hits": [...]}``, each hit carrying ``source``,
``section``, ``page``, ``text``, ``score``, ``relevance`` and ``components`` (each encoder's
score and rank). Bad input gets a 4xx with ``{"detail": "..."}`` naming the problem.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from rag.serve.hits import hit_json
from rag.serve.jobs import JobConflict
from rag.serve.schemas import AskRequest, IngestRequest, SearchRequest
from rag.serve.state import ServerState, ServeSettings


def create_app(settings: ServeSettings) -> FastAPI:
    """The application over the index in ``settings`` (its models load on first use)."""
    state = ServerState(settings)
    app = FastAPI(
        title="situated-rag",
        version=_package_version(),
        description="Search and ask over one index: fused multi-encoder retrieval, "
        "Confident RAG answers streamed as server-sent events.",
    )
    app.state.rag = state

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return resources.files("rag.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness: ``ok`` and whether the index exists yet."""
        return {"status": "ok", "index": str(settings.index), "exists": state.index.exists}

    @app.get("/info")
    def info() -> dict[str, Any]:
        """The index's settings and counts (as ``rag info --json``)."""
        if not state.index.exists:
            raise HTTPException(404, f"no index at {settings.index}: ingest documents first")
        return state.index.info()

    @app.post("/search")
    def search(request: SearchRequest) -> dict[str, Any]:
        """The top ``k`` hits for ``query``, fused over every encoder unless one is named."""
        began = time.perf_counter()
        hits = _guarded(
            lambda: state.search(
                request.query,
                request.k,
                encoder=request.encoder,
                fusion=request.fusion,
                where=request.where,
                dedup=request.dedup,
                mmr=request.mmr,
                rerank=request.rerank,
                min_score=request.min_score,
            ),
            state,
            request.encoder,
        )
        return {
            "query": request.query,
            "hits": [hit_json(h, context=request.context) for h in hits],
            "took_ms": round((time.perf_counter() - began) * 1000, 2),
        }

    @app.post("/ask")
    def ask(request: AskRequest) -> Any:
        """An answer with its citations and every candidate's confidence: streamed as
        server-sent events (``token`` pieces, then one ``answer``) unless ``stream`` is false."""
        strategy = _guarded(lambda: _strategy(state, request), state, None)
        if not request.stream:
            with state.generation_lock:
                answer = strategy.answer(request.question)
            return JSONResponse(answer.to_dict())
        return StreamingResponse(
            _answer_events(state, strategy, request.question),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/ingest", status_code=202)
    def ingest(request: IngestRequest) -> dict[str, Any]:
        """Start ingesting a file or folder on the server's machine; poll ``/jobs/{id}``."""
        if not settings.allow_ingest:
            raise HTTPException(403, "this server was started with --no-ingest")
        try:
            job = state.jobs.start(request.path, prune=request.prune)
        except JobConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except (ValueError, FileNotFoundError) as exc:
            raise HTTPException(422, str(exc)) from None
        return job.to_json()

    @app.get("/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": [j.to_json() for j in state.jobs.all()]}

    @app.get("/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        found = state.jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"no ingest job {job_id!r}")
        return found.to_json()

    return app


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("situated-rag")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _strategy(state: ServerState, request: AskRequest) -> Any:
    return state.strategy(
        request.strategy,
        k=request.k,
        metric=request.metric,
        encoders=request.encoders,
        abstain_below=request.abstain_below,
        max_new_tokens=request.max_new_tokens,
    )


def _guarded(call: Any, state: ServerState, encoder: str | None) -> Any:
    """Run ``call``, turning the library's errors about the request into 4xx answers."""
    try:
        state.check_encoder(encoder)
        return call()
    except FileNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except (ValueError, KeyError) as exc:
        raise HTTPException(422, str(exc).strip("'\"")) from None


def _answer_events(state: ServerState, strategy: Any, question: str) -> Iterator[str]:
    """Server-sent events: ``token`` ({"text"}) as the answer grows, then ``answer`` (the whole
    Answer as JSON), or ``error`` ({"detail"}) if generation failed."""
    try:
        with state.generation_lock:
            stream = strategy.stream(question)
            for piece in stream:
                yield _event("token", {"text": piece})
        yield _event("answer", stream.answer.to_dict() if stream.answer else {})
    except Exception as exc:  # the status line is already sent: report in the stream
        yield _event("error", {"detail": f"{type(exc).__name__}: {exc}"})


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"
