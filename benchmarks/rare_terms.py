"""Rare-term queries over novels: does a strong match that only BM25 finds survive fusion?

    python benchmarks/rare_terms.py [--books persuasion northangerabbey] [--queries 150]

Paragraphs of the novels in ../shared/data/books are the documents. Queries are built from the
corpus text alone (no judgements exist for it): a word that occurs in exactly one paragraph
(``rare word``), or two capitalised names that occur together in at most three paragraphs
(``two names``); the paragraphs holding them are the relevant ones. Prints nDCG@10 and
Recall@10 per encoder and for the default fusion, as it was first (a BM25 list shorter than
its depth normalised against its own few scores, a list of one counting for nothing), with the
chunks such a list leaves out scoring 0 in its background but no weight for its rarity
(``rare_weight 0``), and as it is now (both). ``--books mansfieldpark prideprejudice
sensesensibility`` is the set the default's ``rare_weight`` was chosen on.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import tempfile
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import rag
from rag.retrieval import combine
from rag.retrieval.normalize import stats_from_scores
from rag.types import Document

BOOKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "books"
WORD = re.compile(r"[A-Za-z]+")


def paragraphs(book: str) -> list[str]:
    text = (BOOKS / f"{book}.txt").read_text(encoding="utf-8")
    parts = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return [p for p in parts if len(p.split()) >= 20]


def build_queries(docs: dict[str, str], n: int, seed: int) -> list[tuple[str, set[str]]]:
    words_of = {d: set(WORD.findall(t)) for d, t in docs.items()}
    df = Counter(w.lower() for ws in words_of.values() for w in {x.lower() for x in ws})
    where: dict[str, set[str]] = defaultdict(set)
    for d, ws in words_of.items():
        for w in ws:
            where[w.lower()].add(d)
    rng = random.Random(seed)
    rare = sorted(w for w, c in df.items() if c == 1 and len(w) >= 7)
    singles = [(w, set(where[w])) for w in rng.sample(rare, min(n // 2, len(rare)))]
    names = sorted({w for ws in words_of.values() for w in ws if w[0].isupper() and len(w) >= 4})
    pairs = []
    for d in rng.sample(sorted(docs), len(docs)):
        caps = sorted(w for w in words_of[d] if w in names and 1 < df[w.lower()] <= 8)
        if len(caps) >= 2:
            a, b = rng.sample(caps, 2)
            both = where[a.lower()] & where[b.lower()]
            if len(both) <= 3:
                pairs.append((f"{a} {b}", both))
        if len(pairs) >= n - len(singles):
            break
    return singles + pairs


def ndcg_recall(ranked: list[str], relevant: set[str], k: int = 10) -> tuple[float, float]:
    seen, gains = set(), []
    for d in ranked:
        if d not in seen:
            seen.add(d)
            gains.append(1.0 if d in relevant else 0.0)
        if len(gains) == k:
            break
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal, sum(gains) / len(relevant)


def old_background_stats(ranking, skip):  # noqa: ANN001, ANN201 - the code before the fix
    scores = list(ranking.values()) if isinstance(ranking, dict) else [h.score for h in ranking]
    if len(scores) - skip < 2:
        return None
    return stats_from_scores(scores[skip:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--books", nargs="+", default=["persuasion", "northangerabbey"])
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoders", nargs="+", default=["minilm", "bm25"])
    args = parser.parse_args()

    docs = {f"{b}:{i}": p for b in args.books for i, p in enumerate(paragraphs(b))}
    queries = build_queries(docs, args.queries, args.seed)
    kinds = Counter("two names" if " " in q else "rare word" for q, _ in queries)
    print(f"{len(docs)} paragraphs of {', '.join(args.books)}; queries: {dict(kinds)}")
    with tempfile.TemporaryDirectory() as tmp:
        index = rag.Index.create(Path(tmp) / "idx", encoders=args.encoders, store="memory")
        index.ingest(
            Document(id=d, text=t, source=d, content_hash=str(hash(t))) for d, t in docs.items()
        )
        rows: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
        systems = {name: index.retriever(name) for name in args.encoders}
        fused = systems["fusion:default"] = index.fused_retriever("default")
        default_config = fused.config
        for query, relevant in queries:
            kind = "two names" if " " in query else "rare word"
            for name, retriever in systems.items():
                ranked = [h.chunk.doc_id for h in retriever.retrieve(query, 10)]
                rows[name].append((kind, *ndcg_recall(ranked, relevant)))
            saved = combine.background_stats, fused.lexical
            combine.background_stats, fused.lexical = old_background_stats, set()
            try:
                hits = fused.retrieve(query, 10)
            finally:
                combine.background_stats, fused.lexical = saved
            ranked = [h.chunk.doc_id for h in hits]
            rows["fusion:default (before)"].append((kind, *ndcg_recall(ranked, relevant)))
            fused.config = replace(default_config, rare_weight=0.0)
            try:
                hits = fused.retrieve(query, 10)
            finally:
                fused.config = default_config
            ranked = [h.chunk.doc_id for h in hits]
            rows["fusion:default, rare_weight 0"].append((kind, *ndcg_recall(ranked, relevant)))
    print(f"{'system':<28} {'nDCG@10 all':>12} {'rare word':>10} {'two names':>10} {'R@10':>7}")
    for name, values in rows.items():
        by_kind = {
            kind: sum(v[1] for v in values if v[0] == kind) / max(1, kinds[kind]) for kind in kinds
        }
        ndcg = sum(v[1] for v in values) / len(values)
        recall = sum(v[2] for v in values) / len(values)
        print(
            f"{name:<28} {ndcg:12.4f} {by_kind.get('rare word', 0):10.4f} "
            f"{by_kind.get('two names', 0):10.4f} {recall:7.4f}"
        )


if __name__ == "__main__":
    main()
