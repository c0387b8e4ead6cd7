"""Index upkeep without a rebuild: remove files, drop an encoder, reset the folder.

Each holds the writer lock (:meth:`Index.writing`) and commits in the crash-safe order of
ingestion: what the index lists (``index.json``, ``manifest.json``) changes before the stored
data goes, so a run killed in between leaves unlisted data behind, never a listed hole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from rag.index.external import drop_external
from rag.index.lock import LOCK_NAME, WriterLock
from rag.names import UnknownNameError

if TYPE_CHECKING:
    from rag.index.folder import Index

# What an index folder holds: rag/index/folder.py's _PARTS, rag tune's adapters, the journal.
PARTS = (
    "index.json",
    "manifest.json",
    "docstore",
    "chroma",
    "memory",
    "lexical",
    "bm25",
    "tuned",
    "pending.json",
    "relevance.json",
)


def remove_paths(index: Index, paths: list[str | os.PathLike[str]]) -> list[str]:
    """Drop every indexed file that is one of ``paths`` or lies under one (by path components,
    as ingestion names sources: absolute, resolved); returns the sources removed."""
    with index.writing():
        doc_ids: list[str] = []
        for path in paths:
            doc_ids += index.docstore.sources_under(str(Path(path).expanduser().resolve()))
        doc_ids = sorted(set(doc_ids))
        sources = [index.docstore.files[d]["source"] for d in doc_ids]
        index.remove(doc_ids)
    return sources


def drop_encoder(index: Index, name: str) -> None:
    """Remove encoder ``name``'s store and its configuration entry; the last one stays."""
    with index.writing():
        names = index.config.names()
        if name not in names:
            raise UnknownNameError("encoder of this index", name, names)
        if len(names) == 1:
            raise ValueError(
                f"{name!r} is the only encoder of {index.root}: an index needs one "
                "(add another with `rag ingest PATH --encoder NAME` first, or `rag reset`)"
            )
        entry = index.config.entry(name)
        store = index.store(name)
        index.config.encoders = [e for e in index.config.encoders if e.name != name]
        index._save_config()
        for file in index.docstore.files.values():
            file["encoders"] = [e for e in file.get("encoders", []) if e != name]
        index.docstore.save_manifest()
        _delete_store(index, entry.kind or "dense", name, store)
        index.forget_situated(name)
        index._stores.pop(name, None)


def _delete_store(index: Index, kind: str, name: str, store: object) -> None:
    from rag.index.folder import collection_name

    if kind == "lexical":
        shutil.rmtree(index.root / "lexical" / collection_name(name), ignore_errors=True)
    elif index.config.store == "memory":
        shutil.rmtree(index.root / "memory" / collection_name(name), ignore_errors=True)
    elif index.config.store == "pgvector":
        store.drop()  # type: ignore[attr-defined]
    else:  # the Chroma database holds every dense encoder: drop this one's collection only
        client, collection = getattr(store, "_client", None), getattr(store, "_collection", None)
        if client is not None and collection is not None:
            client.delete_collection(collection.name)


def reset_index(root: str | os.PathLike[str], lock_timeout: float | None = None) -> list[str]:
    """Delete what an index folder holds, refusing a folder that is not an index; anything
    else inside it is kept (and returned), and the folder goes when nothing else is left."""
    root = Path(root)
    if not (root / "index.json").is_file():
        raise FileNotFoundError(f"no index at {root} (no index.json): nothing was deleted")
    with WriterLock(root, lock_timeout):
        drop_external(root)  # tables in a database, when the index keeps its vectors there
        for name in PARTS:
            _delete(root / name)
        kept = sorted(p.name for p in root.iterdir() if p.name != LOCK_NAME)
    _remove_folder(root)  # the lock file, and the folder unless something is kept
    return kept


def discard_unwritten(root: str | os.PathLike[str]) -> None:
    """Remove a folder that a run created but stored nothing in (no ``index.json``): only
    what runs put there; anything else keeps the folder."""
    root = Path(root)
    if not root.is_dir() or (root / "index.json").exists():
        return
    for name in (*PARTS, LOCK_NAME):
        _delete(root / name)
    _remove_folder(root)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_folder(root: Path) -> None:
    (root / LOCK_NAME).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else is in there (or appeared): keep it
        root.rmdir()
