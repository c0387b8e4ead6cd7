"""A private PostgreSQL with pgvector for the session (the PyPI package ``pgserver``).

``pg_dsn`` starts one cluster in a temporary folder, reached over its unix socket, and stops it
at the end of the session; tests that use it skip, saying why, only when no server can start.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install psycopg)")
    # pgserver keeps its socket in the data folder (a unix socket path stops at 107 bytes)
    folder = tmp_path_factory.mktemp("pg")
    started = time.monotonic()
    try:
        with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset, uses /tmp
            warnings.simplefilter("ignore")
            try:
                import pgserver
            except ImportError:
                pytest.skip("pgserver is not installed (pip install pgserver) to run PostgreSQL")
            server = pgserver.get_server(folder, cleanup_mode="stop")
            server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    except Exception as exc:  # noqa: BLE001 - any failure to start means: skip, with why
        pytest.skip(f"pgserver could not start PostgreSQL with pgvector: {exc!r}")
    print(f"pgserver started in {time.monotonic() - started:.2f} s")  # noqa: T201
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def fresh_table() -> str:
    """A table name of its own for one test (the session's tests share one database)."""
    return f"test_{uuid.uuid4().hex[:12]}"
