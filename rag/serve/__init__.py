"""``rag serve``: an HTTP JSON API and a search page over one index (needs the ``serve`` extra).

``create_app(ServeSettings(index=Path(...)))`` gives the ASGI application; run it with any
ASGI server (``rag serve`` uses uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.serve.state import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(settings: ServeSettings) -> FastAPI:
    from rag.serve.app import create_app as build

    return build(settings)


__all__ = ["ServeSettings", "create_app"]
