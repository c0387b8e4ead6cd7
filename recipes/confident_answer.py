"""Recipe: Confident RAG over an index's encoders with the offline SmolLM2 model.

One answer per encoder's hits; the one the model is most confident in (self-certainty, from its
token distributions) wins; below the threshold it abstains.

    .venv/bin/rag ingest docs --index .rag_index/demo --encoder minilm --encoder bm25
    .venv/bin/python recipes/confident_answer.py .rag_index/demo "What does Confident RAG keep?"
"""

from __future__ import annotations

import sys

from rag.answering import ConfidentRAG
from rag.generation.transformers import TransformersGenerator
from rag.index import Index


def main(index_dir: str, question: str) -> None:
    index = Index(index_dir)
    retrievers = [index.retriever(e.name) for e in index.config.encoders]
    strategy = ConfidentRAG(TransformersGenerator(), retrievers, metric="self_certainty", k=3)
    answer = strategy.answer(question)
    print("answer:", answer.text)
    for c in answer.candidates:
        print(f"  {c.name}: {c.confidence.get('self_certainty', float('nan')):.3f}  {c.text!r}")
    for cite in answer.citations:
        print(f"  [{cite.n}] {cite.source} {' > '.join(cite.section)}")


if __name__ == "__main__":
    main(sys.argv[1], " ".join(sys.argv[2:]))
