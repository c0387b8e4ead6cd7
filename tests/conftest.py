"""Shared test settings: offline, telemetry off, sockets disabled except loopback (pytest-socket
options in pyproject.toml)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rag.offline import OFFLINE_DEFAULTS

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ[_key] = _value

# torch's compiler caches (``$TMPDIR/torchinductor_USER``, made whenever torch._dynamo is
# imported) go to one folder of this run, removed at exit, so the tests leave nothing behind;
# child processes inherit it.
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    _INDUCTOR = tempfile.mkdtemp(prefix="rag-tests-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR
    atexit.register(shutil.rmtree, _INDUCTOR, ignore_errors=True)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no copy beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
