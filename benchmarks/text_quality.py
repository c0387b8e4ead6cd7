"""Text quality of ingested documents: the share of short chunks per format, chunks without a
section, and the word spacing of the Debian reference PDF against its plain-text edition.

    python benchmarks/text_quality.py [DOCUMENTS] [--min-chars N]

DOCUMENTS defaults to ``../shared/data/documents``; ``--min-chars 0`` turns the short-chunk
merge off (the "before" of the merge). ``PYTHONPATH`` picks the code measured, so the same
script measures two versions side by side.
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

from connectors.directory import load_directory
from rag.chunking import get_chunker
from rag.types import Document

WORD = re.compile(r"[^\W\d_]+")
SHORT = 60  # characters: the "under 60" column


def spacing(text: str, vocabulary: set[str]) -> str:
    """Letter runs that are words of ``vocabulary``, runs of 15+ letters, mean letters."""
    words = WORD.findall(text)
    known = sum(w.lower() in vocabulary for w in words) / len(words)
    glued = sum(len(w) >= 15 for w in words) / len(words)
    mean = sum(map(len, words)) / len(words)
    return (
        f"runs {len(words):,}, in vocabulary {known:.1%}, 15+ letters {glued:.2%}, mean {mean:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("documents", nargs="?", type=Path, default=Path("../shared/data/documents"))
    ap.add_argument("--min-chars", type=int, default=None, help="the chunker's min_chars")
    args = ap.parse_args()
    options = {} if args.min_chars is None else {"min_chars": args.min_chars}
    chunker = get_chunker("recursive", **options)
    rows: dict[str, list[int]] = {}
    pdf_text, text_edition = "", None
    for doc in load_directory(args.documents):
        if not isinstance(doc, Document):
            continue
        chunks = chunker.chunk(doc)
        row = rows.setdefault(str(doc.metadata.get("format")), [0, 0, 0])
        row[0] += len(chunks)
        row[1] += sum(len(c.text) < SHORT for c in chunks)
        row[2] += sum(not c.section for c in chunks)
        if doc.source.endswith("debian-reference.en.pdf"):
            pdf_text = doc.text
        if "debian-reference.en.txt" in doc.source:
            text_edition = (len(chunks), sum(not c.section for c in chunks))
    print("| format | chunks | under 60 characters | without a section |")
    print("|---|---|---|---|")
    for name, (n, short, bare) in sorted(rows.items()):
        print(f"| {name} | {n:,} | {short:,} ({short / n:.1%}) | {bare:,} |")
    n, short = sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())
    print(f"| all | {n:,} | {short:,} ({short / n:.1%}) | |")
    reference = args.documents / "debian-reference" / "debian-reference.en.txt.gz"
    if pdf_text and reference.exists():
        edition = gzip.open(reference, "rt", encoding="utf-8").read()
        vocabulary = {w.lower() for w in WORD.findall(edition)}
        print("Debian PDF:", spacing(pdf_text, vocabulary))
        print("plain-text edition:", spacing(edition, vocabulary))
    if text_edition:
        print(
            f"plain-text edition: {text_edition[1]} of {text_edition[0]} chunks without a section"
        )


if __name__ == "__main__":
    main()
