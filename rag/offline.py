"""Offline-by-default settings for the heavy backends.

Called right before a backend is imported (never at ``import rag``). Uses ``setdefault`` so a
user who wants the hub can still export ``HF_HUB_OFFLINE=0`` themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "ORT_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)


def cache_root() -> Path:
    """``$RAG_CACHE_DIR`` or ``~/.cache/situated-rag``: where unpacked or converted weights and
    evaluation caches are kept (never inside the package)."""
    env = os.environ.get("RAG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "situated-rag"
