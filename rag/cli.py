"""The ``rag`` console command. Each subcommand lives in ``rag/commands/<name>.py`` and exposes
``register(subparsers)``; heavy imports happen inside the command, never here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

COMMANDS = [
    "ingest",
    "search",
    "info",
    "admin",
    "tune",
    "models",
    "eval",
    "ask",
    "eval_qa",
    "serve",
]


DISTRIBUTION = "situated-rag"  # pyproject.toml's [project] name
# Help for options several commands share, where a command leaves it out.
COMMON_HELP = {
    "--index": "index folder (default: %(default)s)",
    "--json": "print JSON instead of text",
    "--no-progress": "print no progress bar",
    "-k": "how many results (default: %(default)s)",
}


class Parser(argparse.ArgumentParser):
    """Errors as one line, ``error: ...``, with exit code 2 (subparsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rag", description="Offline RAG: ingest, search, evaluate, ask.")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rag.commands.{name}").register(sub)
    for command in sub.choices.values():
        fill_common_help(command)
    return parser


def fill_common_help(parser: argparse.ArgumentParser) -> None:
    """Shared help where a command left it out, and every option's choices named in its help."""
    for action in parser._actions:
        for flag in action.option_strings:
            if action.help is None and flag in COMMON_HELP:
                action.help = COMMON_HELP[flag]
        choices = [str(c) for c in action.choices or ()]
        if action.help and choices and not all(c in action.help for c in choices):
            action.help += f" (one of: {', '.join(choices)})"


def main(argv: Sequence[str] | None = None) -> int:
    from rag.offline import apply_offline_env

    apply_offline_env()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
