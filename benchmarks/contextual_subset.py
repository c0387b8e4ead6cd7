"""Contextual retrieval (Anthropic, "Introducing Contextual Retrieval", 2024) with the offline LLM
on a sub-corpus: MiniLM over 64-token chunks, plain vs prefix vs LLM-written contexts.

The sub-corpus is the gold documents of the first ``--queries`` queries plus random distractors
(fixed seed) up to ``--docs`` documents; it is chunked as ``rag eval --protocol chunked
--chunk-tokens 64`` does and scored by the eval's own systems (exact store, best chunk per
document). The contexts are generated cold into a fresh cache file unless ``--cache`` names one.

    .venv/bin/python benchmarks/contextual_subset.py --docs 40 --queries 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.encoders.situated import ContextualEncoder, get_situated
from rag.encoders.situated.contextual import ContextCache
from rag.eval.beir import BeirDataset, load_beir
from rag.eval.config import EvalConfig
from rag.eval.runner import make_units, score_run
from rag.eval.systems import exact_store, load_base_encoder, make_system


def subset(dataset: BeirDataset, docs: int, queries: int, seed: int) -> BeirDataset:
    """The first ``queries`` queries, their gold documents and random distractors."""
    limited = dataset.limit_queries(queries)
    gold = list(dict.fromkeys(d for q in limited.qrels.values() for d in q if d in dataset.corpus))
    others = sorted(set(dataset.corpus) - set(gold))
    extra = random.Random(seed).sample(others, max(0, min(len(others), docs - len(gold))))
    keep = set(gold) | set(extra)
    corpus = {d: v for d, v in dataset.corpus.items() if d in keep}
    name = f"{dataset.name}-sub{len(corpus)}"
    return BeirDataset(name, corpus, limited.queries, limited.qrels, limited.split)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", nargs="?", default="../shared/data/scifact", type=Path)
    p.add_argument("--docs", type=int, default=40, help="documents in the sub-corpus")
    p.add_argument("--queries", type=int, default=20, help="first N test queries")
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--max-document-tokens", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=16, help="prompts decoded together")
    p.add_argument("--cache", type=Path, default=None, help="context cache file (default: fresh)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--samples", type=int, default=3, help="contexts to print")
    args = p.parse_args()

    from rag.generation.transformers import TransformersGenerator

    data = subset(load_beir(args.dataset, args.split), args.docs, args.queries, args.seed)
    metrics = ("ndcg@10", "recall@10", "mrr@10", "recall@100")
    config = EvalConfig(protocol="chunked", chunk_tokens=64, metrics=metrics)
    units = make_units(data, config)
    documents = {d.id: d for d in units.documents}
    print(
        f"{data.name}: {len(data.corpus)} docs, {len(data.queries)} queries, "
        f"{len(units)} chunks of <= 64 tokens",
        flush=True,
    )
    base = load_base_encoder(args.encoder)
    generator = TransformersGenerator(batch_size=args.batch_size)
    t0 = time.perf_counter()
    generator.load()
    load_seconds = time.perf_counter() - t0
    cache_path = args.cache or Path(tempfile.mkdtemp(prefix="contextual-")) / "contexts.json"
    contextual = ContextualEncoder(
        base,
        generator,
        cache=ContextCache(cache_path),
        max_new_tokens=args.max_new_tokens,
        max_document_tokens=args.max_document_tokens,
    )
    modes = [get_situated("plain", base), get_situated("prefix", base), contextual]
    rows = []
    for situated in modes:
        t0 = time.perf_counter()
        vectors = situated.embed_chunks(units.chunks, batch_size=32, documents=documents)
        seconds = time.perf_counter() - t0
        store = exact_store("dense")
        store.add(units.chunks, vectors.situated)
        name = f"{args.encoder}+{situated.mode}"
        system = make_system(name, situated, store, units, {"encode_seconds": seconds})
        rows.append(score_run(system.run(data, k=config.k), data, config))
        print(f"{name}: encoded in {seconds:.1f} s", flush=True)

    stats = contextual.stats
    per_chunk = stats.generation_seconds / max(1, stats.generated)
    print()
    print("| run | nDCG@10 | Recall@10 | MRR@10 | Recall@100 | encode s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        scores = " | ".join(f"{row[m]:.4f}" for m in metrics)
        print(f"| {row['name']} | {scores} | {row['encode_seconds']:.1f} |")
    print()
    print(
        f"generation: {stats.generated} contexts generated, {stats.cached} cached, "
        f"{stats.failed} failed, {stats.calls} generate_many calls, "
        f"{stats.generation_seconds:.1f} s ({per_chunk:.2f} s per chunk); "
        f"model load {load_seconds:.1f} s; {generator.name}, max_new_tokens="
        f"{args.max_new_tokens}, batch {args.batch_size}; cache {cache_path}"
    )
    sample = contextual.contexts(units.chunks[: args.samples], documents)
    for chunk, context in zip(units.chunks, sample, strict=False):
        print(f"\n[{chunk.doc_id}] context: {context}\n    chunk: {chunk.text[:160]}")
    if args.json:
        report = {
            "dataset": data.name,
            "num_docs": len(data.corpus),
            "num_queries": len(data.queries),
            "num_chunks": len(units),
            "runs": rows,
            "generation": {**vars(stats), "seconds_per_chunk": per_chunk},
            "load_seconds": load_seconds,
            "options": contextual.options(),
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
