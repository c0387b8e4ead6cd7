"""What a writer is about to store or delete, recorded before it touches a store.

The manifest is the commit: a writer stores a batch's chunks, saves the manifest naming them,
and only then deletes the chunks it no longer names. A writer killed in between leaves ids no
manifest knows (orphans: a deleted file that would stay the top hit). ``DIR/pending.json`` lists
those ids while they are at risk, so the next writer removes exactly the ones its manifest does
not name (a few ids, not a scan of every store); :func:`sweep` is the full scan, for ``--prune``
and ``rag info --repair``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.files import write_json_atomic

if TYPE_CHECKING:
    from rag.base import Store
    from rag.index.docstore import Docstore

NAME = "pending.json"


def pending(root: Path) -> list[str]:
    """The ids a killed writer left at risk (empty when the last writer finished)."""
    try:
        return list(json.loads((root / NAME).read_text("utf-8"))["ids"])
    except FileNotFoundError:
        return []


def begin(root: Path, ids: Iterable[str]) -> None:
    """Record ``ids`` (kept with any still pending) before they are stored or deleted."""
    write_json_atomic(root / NAME, {"ids": sorted({*pending(root), *ids})})


def end(root: Path) -> None:
    """The ids recorded are committed or gone: nothing is at risk any more."""
    (root / NAME).unlink(missing_ok=True)


def recover(docstore: Docstore, stores: Sequence[Store]) -> list[str]:
    """Remove what a killed writer left behind: the pending ids the manifest does not name
    (from every store) and chunk files no manifest entry names. Returns the ids removed."""
    ids = pending(docstore.root)
    if not ids and not (docstore.root / NAME).exists():
        return []
    named = docstore.chunk_ids()
    orphans = [i for i in ids if i not in named]
    for store in stores:
        store.delete(orphans)
    for file in docstore.unnamed_files():
        file.unlink(missing_ok=True)
    end(docstore.root)
    return orphans


def orphans_of(store: Store, named: set[str]) -> list[str]:
    """The ids ``store`` holds that ``named`` (the manifest's chunk ids) does not list."""
    return sorted(set(store.ids()) - named)


def sweep(docstore: Docstore, stores: Sequence[Store]) -> int:
    """Remove every stored id and chunk file the manifest does not name; returns the ids."""
    named = docstore.chunk_ids()
    removed = 0
    for store in stores:
        orphans = orphans_of(store, named)
        store.delete(orphans)
        removed += len(orphans)
    for file in docstore.unnamed_files():
        file.unlink(missing_ok=True)
    return removed
