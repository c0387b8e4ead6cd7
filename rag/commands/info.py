"""``rag info --index DIR``: what an index holds; ``--check`` whether its parts agree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rag.commands import existing_index

if TYPE_CHECKING:
    from rag.index import Index


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an index")
    p.add_argument("--index", type=Path, default=Path(".rag_index"))
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--check",
        action="store_true",
        help="compare manifest, docstore and every store: per store its ids, orphans (ids no "
        "manifest names) and missing chunks; exit 1 when anything disagrees",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove orphans and re-embed missing chunks (holds the writer lock), then check",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    index = existing_index(args.index)
    if args.check or args.repair:
        return consistency(index, repair=args.repair, as_json=args.json)
    info = index.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"index    {info['index']} (format {info['format']}, store {info['store']})")
    print(f"chunker  {info['chunker']}")
    print(f"files    {info['files']}")
    print(f"chunks   {info['chunks']}")
    for e in info["encoders"]:
        extra = f", {e['vectors']} vectors" if "vectors" in e else f", {e['chunks']} chunks"
        residual = f", residual={e['residual']:g}" if e.get("residual") is not None else ""
        print(f"encoder  {e['name']} ({e['kind']}, situated={e['situated']}{residual}{extra})")
    return 0


def consistency(index: Index, *, repair: bool, as_json: bool) -> int:
    """``--check`` / ``--repair``: 0 when the index is consistent (after repairing), else 1."""
    from rag.index.check import check
    from rag.index.check import repair as fix

    report = fix(index) if repair else check(index)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1
