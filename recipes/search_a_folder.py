"""Recipe: index a folder with two encoders, search it fused, and hand the hits to LangChain.

.venv/bin/python recipes/search_a_folder.py docs "why keep a chunk's context?"

The index lives in a temporary folder, removed at the end.
"""

from __future__ import annotations

import os
import sys
import tempfile

from connectors.directory import load_directory
from rag.adapters.langchain import as_langchain_retriever
from rag.index import EncoderEntry, Index, IndexConfig


def main(folder: str, question: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rag-recipe-") as scratch:
        # torch makes its compile cache in the temporary folder when torch._dynamo is first
        # imported; nothing is compiled here, so keep it in ours and remove it with it.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(scratch, "torchinductor"))
        search(folder, question, os.path.join(scratch, "index"))


def search(folder: str, question: str, index_dir: str) -> None:
    config = IndexConfig(
        encoders=[EncoderEntry("minilm"), EncoderEntry("bm25", kind="lexical")], store="memory"
    )
    index = Index(index_dir, config)
    print(index.ingest(load_directory(folder, known_hashes=index.known_hashes())).summary())

    for hit in index.retriever().retrieve(question, k=3):  # several encoders: fused
        where = " > ".join(hit.chunk.section) or hit.chunk.source
        sources = ", ".join(f"{n} #{s.rank}" for n, s in hit.components.items())
        print(f"{hit.rank}. {where} [{sources}]\n   {hit.chunk.text[:100]!r}")

    retriever = as_langchain_retriever(index.retriever("minilm"), k=2)
    for doc in retriever.invoke(question):
        print("langchain:", doc.metadata["source"], doc.metadata["section"], doc.metadata["score"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs", " ".join(sys.argv[2:]) or "fusion")
