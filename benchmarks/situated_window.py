"""Late chunking with its window vector: ``l2(s + beta * w)`` from one forward pass.

For each set, one late-chunking pass with the base model and one with the shipped trained
adapter give every chunk two vectors (its span pooled, ``s``, and its whole window pooled,
``w``); the script then scores ``s + beta * w`` over a grid of ``beta`` (and the plain-chunk
residual ``+ alpha * c`` for comparison), under the chunked-document protocol of
../shared/data/README.md (64-token chunks, a document scores its best chunk).

``beta`` is chosen on SciFact's *train* queries (the only train split); the test rows at that
``beta`` are the ones to report. Vectors are kept in ``--cache`` so a re-run only scores.

    python benchmarks/situated_window.py ../shared/data --out benchmarks/results/window.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rag.encoders import load_encoder
from rag.encoders.situated import get_situated
from rag.eval.beir import load_beir
from rag.eval.cache import CachedEncoder
from rag.eval.metrics import evaluate
from rag.eval.units import chunked_units, make_chunker, whole_units

SETS = (("scifact", "packed"), ("climate_fever", "record"), ("hotpotqa_dev100", "sentence"))
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def doc_run(scores: np.ndarray, doc_index: np.ndarray, doc_ids: list[str], qids: list[str]):
    """Each query's top-100 documents, a document scoring its best chunk."""
    # chunks come grouped by document (chunked_units keeps corpus order)
    starts = np.flatnonzero(np.r_[True, doc_index[1:] != doc_index[:-1]])
    best = np.full((scores.shape[0], len(doc_ids)), -np.inf, dtype=np.float32)
    best[:, doc_index[starts]] = np.maximum.reduceat(scores, starts, axis=1)
    top = np.argsort(-best, axis=1)[:, :100]
    return {q: [doc_ids[d] for d in top[r]] for r, q in enumerate(qids)}


def metrics(run, qrels) -> dict[str, float]:
    m = evaluate(run, qrels, ("ndcg@10", "recall@100"))
    return {k: round(v, 4) for k, v in m.items()}


def encode_set(root: Path, name: str, chunking: str, cache: Path) -> dict[str, np.ndarray]:
    path = cache / f"{name}.npz"
    if path.is_file():
        return dict(np.load(path))
    ds = load_beir(root / name, "test")
    units = chunked_units(ds, make_chunker(64, chunking=chunking))
    base = load_encoder("minilm")
    arrays: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    t = time.perf_counter()
    arrays["plain"] = CachedEncoder(base).embed_documents([c.text for c in units.chunks])
    timings["plain"] = time.perf_counter() - t
    t = time.perf_counter()
    wu = whole_units(ds)
    arrays["whole"] = CachedEncoder(base).embed_documents([c.text for c in wu.chunks])
    timings["whole"] = time.perf_counter() - t
    for mode in ("late", "trained"):
        situated = get_situated(mode, base)
        t = time.perf_counter()
        arrays[f"{mode}_s"], arrays[f"{mode}_w"] = situated.late_parts(units.chunks, True)
        timings[mode] = time.perf_counter() - t
        if mode == "trained":
            adapted = situated.base
            t = time.perf_counter()
            arrays["trained_plain"] = adapted.embed_documents([c.text for c in units.chunks])
            timings["trained_plain"] = time.perf_counter() - t
    doc_ids = [d.id for d in units.documents]
    position = {d: i for i, d in enumerate(doc_ids)}
    arrays["doc_index"] = np.asarray([position[c.doc_id] for c in units.chunks])
    arrays["timings"] = np.asarray(json.dumps(timings))
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    print(name, {k: round(v, 1) for k, v in timings.items()}, flush=True)
    return arrays


def query_vectors(root: Path, name: str, split: str, cache: Path) -> dict[str, np.ndarray]:
    path = cache / f"{name}.{split}.queries.npz"
    if path.is_file():
        return dict(np.load(path))
    ds = load_beir(root / name, split)
    texts = [ds.queries[q] for q in ds.queries]
    base = load_encoder("minilm")
    trained = get_situated("trained", base)
    arrays = {"base": base.embed_queries(texts), "trained": trained.embed_queries(texts)}
    np.savez(path, **arrays)
    return arrays


def score_set(root: Path, name: str, split: str, arrays: dict[str, np.ndarray], cache: Path):
    ds = load_beir(root / name, split)
    qids = list(ds.queries)
    q = query_vectors(root, name, split, cache)
    doc_ids = list(ds.corpus)
    doc_index = arrays["doc_index"]
    rows: dict[str, dict[str, float]] = {}

    def add(label: str, vectors: np.ndarray, queries: np.ndarray, index=doc_index) -> None:
        rows[label] = metrics(doc_run(queries @ vectors.T, index, doc_ids, qids), ds.qrels)

    add("whole", arrays["whole"], q["base"], np.arange(len(doc_ids)))
    add("plain", arrays["plain"], q["base"])
    for mode, queries, plain in (
        ("late", q["base"], arrays["plain"]),
        ("trained", q["trained"], arrays["trained_plain"]),
    ):
        s, w = arrays[f"{mode}_s"], arrays[f"{mode}_w"]
        for beta in BETAS:
            v = s + np.float32(beta) * w
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            add(f"{mode}+window{beta}", v, queries)
            add(f"{mode}+window{beta}+res0.5", v + 0.5 * plain, queries)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/situated_window"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {}
    for name, chunking in SETS:
        arrays = encode_set(args.data, name, chunking, args.cache)
        splits = ("train", "test") if name == "scifact" else ("test",)
        for split in splits:
            rows = score_set(args.data, name, split, arrays, args.cache)
            report[f"{name}/{split}"] = {
                "rows": rows,
                "timings": json.loads(str(arrays["timings"])),
            }
            for label, m in rows.items():
                print(f"{name}/{split}\t{label}\t{m['ndcg@10']}\t{m['recall@100']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
