"""``rag info --check`` / ``--repair``: do the manifest, docstore and every store agree?

The manifest is the commit (:mod:`rag.index.ingest`): a store id it does not name is an orphan
(left by a writer killed between storing and committing, or by an older version), a chunk it
names that a store lacks is missing. Repair removes orphans, embeds missing chunks again from
the docstore, and drops entries whose chunk file is gone (the next ingest re-reads their files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.index import journal

if TYPE_CHECKING:
    from rag.index.folder import Index

SHOWN = 5  # ids named per problem in the text report


@dataclass
class StoreCheck:
    """One encoder's store against the manifest."""

    name: str
    count: int
    orphans: list[str]
    missing: list[str]

    def line(self) -> str:
        text = f"store {self.name}: {self.count} ids, {len(self.orphans)} orphans"
        text += f", {len(self.missing)} missing"
        if self.orphans:
            text += f" (orphans: {', '.join(self.orphans[:SHOWN])}{_more(self.orphans)})"
        if self.missing:
            text += f" (missing: {', '.join(self.missing[:SHOWN])}{_more(self.missing)})"
        return text


@dataclass
class CheckReport:
    """Every store's check, and the docstore's: entries without their chunk file, chunk files
    no entry names, ids a killed writer left pending."""

    stores: list[StoreCheck] = field(default_factory=list)
    lost_files: list[str] = field(default_factory=list)
    unnamed_files: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        problems = [self.lost_files, self.unnamed_files, self.pending]
        problems += [s.orphans for s in self.stores] + [s.missing for s in self.stores]
        return not any(problems)

    def lines(self) -> list[str]:
        out = [s.line() for s in self.stores]
        out.append(
            f"docstore: {len(self.lost_files)} entries without their chunk file, "
            f"{len(self.unnamed_files)} unnamed chunk files, {len(self.pending)} pending ids"
        )
        out.append("consistent" if self.ok else "INCONSISTENT (rag info --repair, or rag ingest)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stores": [vars(s) for s in self.stores],
            "lost_files": self.lost_files,
            "unnamed_files": self.unnamed_files,
            "pending": self.pending,
        }


def _more(ids: list[str]) -> str:
    return f", ... {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""


def check(index: Index) -> CheckReport:
    """Compare the manifest with the docstore and every store (reads only, takes no lock)."""
    docstore = index.docstore
    docstore.refresh()
    report = CheckReport(pending=journal.pending(index.root))
    report.lost_files = sorted(d for d in docstore.files if not docstore.path_of(d).exists())
    report.unnamed_files = [p.name for p in docstore.unnamed_files()]
    named = docstore.chunk_ids()
    for entry in index.config.encoders:
        store = index.store(entry.name)
        store.refresh()
        held = set(store.ids())
        wanted = {
            i
            for e in docstore.files.values()
            if entry.name in e.get("encoders", [entry.name])
            for i in e["chunk_ids"]
        }
        report.stores.append(
            StoreCheck(entry.name, len(held), sorted(held - named), sorted(wanted - held))
        )
    return report


def repair(index: Index) -> CheckReport:
    """Make the index consistent (holding the writer lock); returns the check after it."""
    from rag.index.ingest import remove_documents

    with index.writing():
        stores = [index.store(e.name) for e in index.config.encoders]
        journal.recover(index.docstore, stores)
        found = check(index)
        if found.lost_files:  # their chunks cannot be read back: the next ingest redoes them
            remove_documents(index.docstore, stores, found.lost_files)
            found = check(index)
        for entry, result in zip(index.config.encoders, found.stores, strict=True):
            store = index.store(entry.name)
            store.delete(result.orphans)
            if result.missing:
                missing = set(result.missing)
                chunks = [c for c in index.all_chunks() if c.id in missing]
                store.add(chunks, index.chunk_embedder(entry)(chunks))
        for name in found.unnamed_files:
            (index.root / "docstore" / name).unlink(missing_ok=True)
        journal.end(index.root)
    return check(index)
