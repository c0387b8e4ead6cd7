"""The ``rag`` subcommands, one module each; shared argument types live here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.index import Index


def situated_mode(value: str) -> str:
    """An argparse type: a situated mode name (``trained:ADAPTER`` included), checked early."""
    from rag.encoders.situated import check_mode

    try:
        check_mode(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def existing_index(path: Path) -> Index:
    """The index at ``path``, or a clear error when there is none (nothing is created)."""
    from rag.index import Index

    index = Index(path)
    if not index.exists:
        raise FileNotFoundError(f"no index at {path}")
    return index
