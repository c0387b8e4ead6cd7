"""The ``rag`` subcommands, one module each; shared argument types live here."""

from __future__ import annotations

import argparse


def situated_mode(value: str) -> str:
    """An argparse type: a situated mode name (``trained:ADAPTER`` included), checked early."""
    from rag.encoders.situated import check_mode

    try:
        check_mode(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
