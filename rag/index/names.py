"""Check every name an index is asked for before anything is parsed, loaded or written.

A typo (``minlm``, ``recursiv``) used to surface only when the first batch was embedded, after
every file was parsed and after ``index.json`` recorded it: the folder then failed for good.
These checks are cheap (no model is loaded) and raise :class:`~rag.names.UnknownNameError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rag.index.config import EncoderEntry, IndexConfig
from rag.names import UnknownNameError, check_name, suggest

MODEL_HINT = ", or a sentence-transformers model folder"


def registered_encoders() -> list[str]:
    from rag.encoders.registry import REGISTRY

    return list(REGISTRY)


def check_encoder(name: str | os.PathLike[str]) -> str:
    """A registered encoder, a model folder, or a hub id that is cached or may be downloaded.

    A near miss of a registered name (``minlm``) is a typo, not a hub id, unless it is cached:
    it fails here, naming the registered name it is closest to, before any file is parsed.
    """
    text = os.fspath(name)
    registered = registered_encoders()
    if text in registered or Path(text).expanduser().is_dir():
        return text
    from rag.encoders import sentence_transformers as st

    hub_id = st._HUB_ID.match(text) is not None
    if hub_id and st._in_hub_cache(text):
        return text
    if not hub_id or st._hub_offline() or suggest(text, registered):
        raise UnknownNameError("encoder", text, registered, MODEL_HINT)
    return text  # a hub name, downloaded when it is loaded (HF_HUB_OFFLINE=0)


def check_chunker(name: str) -> str:
    from rag.chunking import CHUNKERS

    return check_name("chunker", name, CHUNKERS)


def check_situated(mode: str) -> str:
    """A situated mode (``trained:ADAPTER`` included)."""
    from rag.encoders.situated import SITUATED_MODES, check_mode

    check_name("situated mode", mode.partition(":")[0], SITUATED_MODES)
    check_mode(mode)
    return mode


def check_store(name: str) -> str:
    from rag.index.config import STORE_KINDS

    return check_name("store", name, STORE_KINDS)


def check_entries(entries: Iterable[EncoderEntry]) -> None:
    for entry in entries:
        check_encoder(entry.name)
        if entry.kind == "dense":
            check_situated(entry.situated)


def check_request(config: IndexConfig, stored: IndexConfig | None) -> None:
    """Every name ``config`` asks for; encoders already in ``stored`` are taken as they are (a
    model folder that has moved must not stop the index from opening)."""
    check_chunker(config.chunker)
    check_store(config.store)
    have = set(stored.names()) if stored is not None else set()
    check_entries(e for e in config.encoders if e.name not in have)


__all__ = ["UnknownNameError", "check_chunker", "check_encoder", "check_request"]
