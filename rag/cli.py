"""The ``rag`` console command. Each subcommand lives in ``rag/commands/<name>.py`` and exposes
``register(subparsers)``; heavy imports happen inside the command, never here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = ["ingest", "search", "info", "tune", "models", "eval", "ask", "eval_qa"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Offline RAG: ingest, search, evaluate, ask."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"rag.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rag.offline import apply_offline_env

    apply_offline_env()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
