"""``rag info --index DIR``: what an index holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.commands import existing_index


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an index")
    p.add_argument("--index", type=Path, default=Path(".rag_index"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    index = existing_index(args.index)
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
