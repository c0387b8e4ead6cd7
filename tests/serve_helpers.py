"""A real ``rag serve`` application on a loopback port, run by uvicorn in a thread of the test
process (so test-only encoders registered with monkeypatch are visible to it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOCS = {
    "fusion.md": "# Fusion\n\n## Reciprocal rank\n\nReciprocal rank fusion adds one over sixty "
    "plus the rank from every list.\n\n## Z-scores\n\nThe mixture standardises each model's "
    "similarities with a z-score before pooling the candidates.\n",
    "chunking.md": "# Chunking\n\n## Context\n\nEvery chunk keeps the context window around "
    "it, so a short chunk is found by what it means in its place.\n",
    "install.txt": "Install the package with the set-up script; it creates a virtual "
    "environment and installs CPU torch first.\n",
}


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(app: object) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields the base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
