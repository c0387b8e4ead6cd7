"""The ``rag`` subcommands, one module each; shared argument types live here."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.index import Index


def situated_mode(value: str) -> str:
    """An argparse type: a situated mode name (``trained:ADAPTER`` included), checked early."""
    from rag.index.names import check_situated

    return _checked(check_situated, value)


def encoder_name(value: str) -> str:
    """An argparse type: a registered encoder or a model folder (did-you-mean for typos)."""
    from rag.index.names import check_encoder

    return _checked(check_encoder, value)


def fusion_name(value: str) -> str:
    """An argparse type: ``default``, ``METHOD`` or ``METHOD@STATS``, checked against the
    fusion registry before any index or model is opened."""
    from rag.names import check_name
    from rag.retrieval.fusion import FUSIONS
    from rag.retrieval.multi import STATS_SOURCES

    def check(text: str) -> str:
        if text != "default":
            method, at, stats = text.partition("@")
            check_name("fusion", method, [*FUSIONS, "default"])
            if at:
                check_name("fusion statistics", stats, STATS_SOURCES)
        return text

    return _checked(check, value)


def choice(kind: str, choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type for a fixed set of names, with "did you mean" for a near miss."""
    from rag.names import check_name

    def parse(value: str) -> str:
        return _checked(lambda v: check_name(kind, v, choices), value)

    parse.__name__ = kind  # argparse names the type in its own messages
    return parse


def _checked(check: Callable[[str], object], value: str) -> str:
    try:
        check(value)
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
