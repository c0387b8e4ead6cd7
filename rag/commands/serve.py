"""``rag serve --index DIR [--host 127.0.0.1] [--port 8000]``: the HTTP API and search page.

Models load once per server (the encoders on the first search, the LLM on the first ask) and
are shared by concurrent requests; see :mod:`rag.serve.app` for the routes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.commands.ask import GENERATOR_CHOICES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an index over HTTP: JSON API and a search page",
        description="Serve one index: GET /health, GET /info, POST /search, POST /ask "
        "(server-sent events), POST /ingest with GET /jobs/ID, a search page at /, and the "
        "OpenAPI description at /openapi.json. Needs the 'serve' extra (fastapi, uvicorn).",
    )
    p.add_argument("--index", type=Path, default=Path(".rag_index"), help="the index folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.add_argument(
        "--generator",
        choices=GENERATOR_CHOICES,
        default="transformers",
        help="LLM for /ask (default: transformers with SmolLM2-135M-Instruct, offline)",
    )
    p.add_argument("--model", default=None, help="model folder or name for the generator")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible server (openai)")
    p.add_argument(
        "--max-new-tokens", type=int, default=256, help="answer length limit (default: 256)"
    )
    p.add_argument(
        "--rerank",
        default=None,
        metavar="MODEL_FOLDER",
        help="rerank fused candidates with this sentence-transformers CrossEncoder folder",
    )
    p.add_argument(
        "--rerank-candidates",
        type=int,
        default=30,
        help="candidates the cross-encoder reads per query (default: 30)",
    )
    p.add_argument(
        "--no-ingest", action="store_true", help="refuse POST /ingest (read-only server)"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from rag.serve import ServeSettings, create_app
    except ImportError as exc:
        raise ImportError(
            f"rag serve needs the 'serve' extra ({exc.name} is missing): "
            'pip install -e ".[serve]"'
        ) from None
    settings = ServeSettings(
        index=args.index,
        generator=args.generator,
        model=args.model,
        base_url=args.base_url,
        max_new_tokens=args.max_new_tokens,
        allow_ingest=not args.no_ingest,
        rerank=args.rerank,
        rerank_candidates=args.rerank_candidates,
    )
    app = create_app(settings)
    if app.state.rag.index.exists:  # load the encoders now, not on the first user's request
        print(f"loading the encoders of {args.index} ...", file=sys.stderr, flush=True)
        app.state.rag.search("warm up", 1)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
