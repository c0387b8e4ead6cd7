"""A small real index for the adapter convention tests: markdown, text and a PDF (so hits have
pages), indexed with the fake dense encoder ``hash`` and BM25 (fused, with a relevance model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.index import EncoderEntry, Index, IndexConfig
from tests.fakes import register_hash_encoder
from tests.fixtures_docs import make_pdf

TEXTS = {
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava.\n\n"
    "## Ash\n\nVolcanic ash grounds aircraft because it melts inside jet engines.\n",
    "bees.md": "# Bees\n\nHoney bees dance to tell their hive where flowers are.\n",
    "tea.txt": "Green tea is steamed or pan-fired soon after picking to stop oxidation.\n",
}
PDF_PAGES = [
    ["Tides rise and fall twice a day along the coast."],
    ["The moon pulls the oceans and so makes the tides."],
    ["Glaciers carve deep valleys very slowly over centuries."],
]
PDF_OUTLINE = [("Tides", 0, ()), ("Ice", 2, ())]


def build_index(root: Path) -> Index:
    from connectors.directory import load_directory

    docs = root / "docs"
    docs.mkdir(parents=True)
    for name, text in TEXTS.items():
        (docs / name).write_text(text, "utf-8")
    (docs / "coast.pdf").write_bytes(make_pdf(PDF_PAGES, outline=PDF_OUTLINE))
    config = IndexConfig(
        encoders=[EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")], store="memory"
    )
    index = Index(root / "idx", config)
    index.ingest(load_directory(docs))
    return index


def index_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """Body of a module-scoped fixture: the index, with ``hash`` registered while it is used."""
    with pytest.MonkeyPatch.context() as mp:
        register_hash_encoder(mp)
        yield build_index(tmp_path_factory.mktemp("adapters"))
