"""``rag models``: which encoders are registered, installed, and where their weights live."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the registered encoders and whether they are installed",
        description="List the registered encoders: kind, installed, dimension, location. "
        "Any sentence-transformers model folder also works wherever an encoder is named.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["name", "kind", "installed", "dim", "location"]
    cells = [
        [
            r["name"],
            r["kind"],
            "yes" if r["installed"] else "no",
            "-" if r["dim"] is None else str(r["dim"]),
            r["location"] if r["installed"] else f"not installed: pip install {r['package']}",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *cells]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rag.encoders.registry import installed_models

    rows = installed_models()
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
