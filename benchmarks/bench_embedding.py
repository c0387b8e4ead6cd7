"""Embedding throughput by backend, batch size and thread count, with each backend's vectors
checked against torch float32 on the same chunks.

    python benchmarks/bench_embedding.py [--docs N] [--tokens T] [--repeats R]
        [--backends torch,bf16,onnx,onnx-int8] [--batches 32,64] [--threads 1,2]

The chunks are SciFact abstracts (``$SCIFACT_CORPUS`` or ../shared/data/scifact) cut by the
token chunker at ``T`` tokens (default 64), the first ``N`` documents (default 200). Every
configuration embeds the same chunks; configurations run interleaved, ``R`` times each
(default 3), and the table gives the median seconds, tokens/s (model tokens, padding excluded),
the speed as a multiple of torch at batch 32 on the same thread count, and the smallest cosine of
any chunk's vector to torch float32's. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

CORPUS = Path(
    os.environ.get(
        "SCIFACT_CORPUS",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl",
    )
)


def load_chunks(docs: int, tokens: int) -> list[str]:
    from rag.chunking import get_chunker
    from rag.types import Document, sha256_hex

    chunker = get_chunker("token", max_tokens=tokens)
    texts: list[str] = []
    with open(CORPUS, encoding="utf-8") as fh:
        for line, _ in zip(fh, range(docs), strict=False):
            row = json.loads(line)
            text = f"{row.get('title', '')}\n\n{row['text']}".strip()
            doc = Document(
                id=str(row["_id"]), text=text, source=str(row["_id"]), content_hash=sha256_hex(text)
            )
            texts.extend(c.text for c in chunker.chunk(doc))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="torch,bf16,onnx,onnx-int8")
    parser.add_argument("--batches", default="32,64")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)

    import torch

    from rag.encoders.registry import load_encoder
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    texts = load_chunks(args.docs, args.tokens)
    location = load_encoder("minilm").location
    encoders = {}
    for backend in args.backends.split(","):
        try:
            enc = SentenceTransformerEncoder(location, backend=backend)
            enc.embed_documents(texts[:4])  # resolve, export or probe before timing
            encoders[backend] = enc
        except Exception as exc:  # a backend this machine cannot run is reported, not fatal
            print(f"skipping {backend}: {exc}", file=sys.stderr)
    tokenizer = encoders[next(iter(encoders))].tokenizer
    n_tokens = sum(min(len(ids), 256) for ids in tokenizer(texts)["input_ids"])
    print(f"{len(texts)} chunks of <= {args.tokens} tokens ({n_tokens} model tokens)\n")

    configs = [
        (backend, batch, threads)
        for threads in map(int, args.threads.split(","))
        for backend in encoders
        for batch in map(int, args.batches.split(","))
        if not (backend.startswith("onnx") and batch != int(args.batches.split(",")[0]))
    ]  # ONNX chooses its own batches by a token budget: one batch setting is enough
    seconds: dict[tuple[str, int, int], list[float]] = {c: [] for c in configs}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for backend, batch, threads in configs:
            os.environ["RAG_THREADS"] = str(threads)  # the backends' own thread choice
            torch.set_num_threads(threads)
            start = time.perf_counter()
            out = encoders[backend].embed_documents(texts, batch_size=batch)
            seconds[(backend, batch, threads)].append(time.perf_counter() - start)
            vectors.setdefault(backend, out)
    os.environ.pop("RAG_THREADS", None)

    reference = vectors.get("torch")
    print("| backend | batch | threads | seconds (median) | tokens/s | x torch b32 | min cosine |")
    print("|---|---|---|---|---|---|---|")
    for backend, batch, threads in configs:
        median = statistics.median(seconds[(backend, batch, threads)])
        base_key = ("torch", int(args.batches.split(",")[0]), threads)
        base = statistics.median(seconds[base_key]) if base_key in seconds else float("nan")
        cosine = (
            float(np.min(np.sum(vectors[backend] * reference, axis=1)))
            if reference is not None
            else float("nan")
        )
        shown_batch = "budget" if backend.startswith("onnx") else str(batch)
        print(
            f"| {backend} | {shown_batch} | {threads} | {median:.2f} | {n_tokens / median:,.0f} "
            f"| {base / median:.2f} | {cosine:.6f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
