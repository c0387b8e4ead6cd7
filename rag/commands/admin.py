"""``rag remove PATH``, ``rag drop-encoder NAME`` and ``rag reset``: change an index in place
(see :mod:`rag.index.admin`), holding its writer lock."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.commands import existing_index

INDEX_HELP = "index folder (default: %(default)s)"
WAIT_HELP = "wait at most this long for another writer (default: as long as it takes)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("remove", help="drop a file's (or a folder's files') chunks from an index")
    p.add_argument("path", nargs="+", help="an indexed file, or a folder: every file under it")
    _common(p)
    p.set_defaults(func=run_remove)

    p = sub.add_parser("drop-encoder", help="remove one encoder (its store and its config entry)")
    p.add_argument("name", help="the encoder's name, as `rag info` lists it")
    _common(p)
    p.set_defaults(func=run_drop_encoder)

    p = sub.add_parser("reset", help="delete everything an index folder holds")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _common(p)
    p.set_defaults(func=run_reset)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, default=Path(".rag_index"), help=INDEX_HELP)
    p.add_argument("--wait-lock", type=float, default=None, metavar="SECONDS", help=WAIT_HELP)


def run_remove(args: argparse.Namespace) -> int:
    from rag.index.admin import remove_paths

    index = existing_index(args.index)
    index.lock_timeout = args.wait_lock
    removed = remove_paths(index, args.path)
    if not removed:
        print(f"error: nothing indexed under {', '.join(args.path)}", file=sys.stderr)
        return 1
    for source in removed:
        print(f"removed {source}")
    print(f"removed {len(removed)} files; {index.docstore.chunk_count()} chunks left")
    return 0


def run_drop_encoder(args: argparse.Namespace) -> int:
    from rag.index.admin import drop_encoder

    index = existing_index(args.index)
    index.lock_timeout = args.wait_lock
    drop_encoder(index, args.name)
    print(f"dropped encoder {args.name!r}; the index keeps {', '.join(index.config.names())}")
    return 0


def run_reset(args: argparse.Namespace) -> int:
    from rag.index.admin import reset_index

    existing_index(args.index)  # refuse a folder that is not an index before asking
    if not args.yes and not confirmed(f"delete everything the index {args.index} holds?"):
        print("error: not reset (pass --yes to reset without asking)", file=sys.stderr)
        return 1
    kept = reset_index(args.index, args.wait_lock)
    note = f" (kept what is not the index's: {', '.join(kept)})" if kept else ""
    print(f"reset {args.index}{note}")
    return 0


def confirmed(question: str) -> bool:
    """A yes from the terminal; without one (a pipe, a script) the answer is no."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
