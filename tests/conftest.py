"""Shared test settings: offline, telemetry off, sockets disabled except loopback (pytest-socket
options in pyproject.toml)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.offline import OFFLINE_DEFAULTS

for _key, _value in OFFLINE_DEFAULTS.items():
    os.environ[_key] = _value

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no copy beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
