"""Recipe: Confident RAG over an index's encoders with the offline SmolLM2 model.

One answer per encoder's hits; the one the model is most confident in (self-certainty, from its
token distributions) wins; below ``--threshold`` it abstains. Without ``--index`` the shipped
``docs/`` folder is indexed (MiniLM and BM25) into a temporary folder, removed at the end.

    .venv/bin/python recipes/confident_answer.py "What does Confident RAG keep?"
    .venv/bin/rag ingest docs --index .rag_index/demo --encoder minilm --encoder bm25
    .venv/bin/python recipes/confident_answer.py --index .rag_index/demo "What does Confident RAG keep?"

``--generator echo`` swaps the LLM for the deterministic fake (no model: for a quick look).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from connectors.directory import load_directory
from rag.answering import ConfidentRAG
from rag.generation import get_generator
from rag.index import Index

DOCS = Path(__file__).resolve().parents[1] / "docs"


def answer(index: Index, question: str, generator: str, threshold: float | None) -> None:
    retrievers = [index.retriever(e.name) for e in index.config.encoders]
    llm = get_generator(generator)
    strategy = ConfidentRAG(llm, retrievers, metric="self_certainty", k=3, threshold=threshold)
    result = strategy.answer(question)
    print("answer:", result.text, "(abstained)" if result.abstained else "")
    for c in result.candidates:
        print(f"  {c.name}: {c.confidence.get('self_certainty', float('nan')):.3f}  {c.text!r}")
    for cite in result.citations:
        print(f"  [{cite.n}] {cite.source} {' > '.join(cite.section)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="+")
    parser.add_argument("--index", default=None, help="an index folder (default: docs/, temporary)")
    parser.add_argument("--generator", default="transformers", choices=["transformers", "echo"])
    parser.add_argument("--threshold", type=float, default=None, help="abstain below this")
    args = parser.parse_args(argv)
    question = " ".join(args.question)
    with tempfile.TemporaryDirectory(prefix="rag-recipe-") as folder:
        # torch makes its compile cache in the temporary folder when generation imports
        # torch._dynamo; nothing is compiled here, so keep it in ours and remove it with it.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(folder, "torchinductor"))
        if args.index:
            index = Index(args.index)
        else:
            index = Index.create(
                Path(folder) / "index", encoders=["minilm", "bm25"], store="memory"
            )
            print(index.ingest(load_directory(DOCS)).summary())
        answer(index, question, args.generator, args.threshold)


if __name__ == "__main__":
    main()
