"""The trained situated mode at several late-chunking window lengths, and its encode cost.

    python benchmarks/trained_window.py ../shared/data --windows 512,256,128
    python benchmarks/trained_window.py ../shared/data --timing 300

Quality: under the chunked-document protocol of ../shared/data/README.md (64-token chunks, a
document scores its best chunk), nDCG@10 / Recall@100 of plain chunks and of
``get_situated("trained", minilm, window_tokens=N)`` for each N, on SciFact (train and test
queries: the window is chosen on train), Climate-FEVER and HotpotQA dev-100, plus the trained
mode with a 0.5 residual of the adapted model's plain vectors at the default window.
Timing (``--timing DOCS``): process CPU seconds to embed the chunks of the first DOCS SciFact
abstracts as plain chunks and in the trained mode at each window, mean of 3 repetitions in
rotated order, in one process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from situated_window import doc_run, metrics
from train_situated import is_dev_query

from rag.encoders import load_encoder
from rag.encoders.situated import get_situated
from rag.eval.beir import load_beir
from rag.eval.units import chunked_units, make_chunker

SETS = {
    "scifact": ("packed", ("train", "dev", "test")),
    "climate_fever": ("record", ("test",)),
    "hotpotqa_dev100": ("sentence", ("test",)),
}


DEV_FRACTION = 0.2


def quality(
    root: Path,
    name: str,
    windows: list[int],
    adapters: list[str],
    with_plain: bool = True,
    with_residual: bool = True,
) -> None:
    chunking, splits = SETS[name]
    units = chunked_units(load_beir(root / name, "test"), make_chunker(64, chunking=chunking))
    doc_ids = [d.id for d in units.documents]
    position = {d: i for i, d in enumerate(doc_ids)}
    doc_index = np.asarray([position[c.doc_id] for c in units.chunks])
    base = load_encoder("minilm")
    texts = [c.text for c in units.chunks]
    rows = {"plain": (base.embed_documents(texts), base)} if with_plain else {}
    for adapter in adapters:  # other adapter files, each at its own default window
        trained = get_situated("trained", base, adapter=adapter)
        started = time.perf_counter()
        rows[f"trained:{Path(adapter).stem}"] = (
            trained.embed_chunks(units.chunks).situated,
            trained,
        )
        print(f"{name}: {adapter} encoded in {time.perf_counter() - started:.1f}s", flush=True)
    for n in windows:
        trained = get_situated("trained", base, window_tokens=n)
        started = time.perf_counter()
        rows[f"trained@{n}"] = (trained.embed_chunks(units.chunks).situated, trained)
        print(f"{name}: trained@{n} encoded in {time.perf_counter() - started:.1f}s", flush=True)
    default = get_situated("trained", base)
    residual = rows.get(f"trained@{default.window_tokens}")
    if residual is not None and with_residual:
        plain = default.base.embed_documents(texts)
        rows[f"trained@{default.window_tokens}+res0.5"] = (residual[0] + 0.5 * plain, default)
    for split in splits:
        ds = load_beir(root / name, "train" if split == "dev" else split)
        qids = list(ds.queries)
        if split == "dev":  # the train queries an adapter trained with --dev-fraction 0.2 left out
            qids = [q for q in qids if is_dev_query(q, DEV_FRACTION)]
        texts_q = [ds.queries[q] for q in qids]
        judged = {q: ds.qrels[q] for q in qids if q in ds.qrels}
        for label, (vectors, encoder) in rows.items():
            queries = encoder.embed_queries(texts_q)
            found = metrics(doc_run(queries @ vectors.T, doc_index, list(ds.corpus), qids), judged)
            print(f"{name}/{split} {label}: {found}", flush=True)


def timing(root: Path, n_docs: int, windows: list[int]) -> None:
    units = chunked_units(load_beir(root / "scifact", "test"), make_chunker(64, chunking="packed"))
    keep = set(sorted({c.doc_id for c in units.chunks})[:n_docs])
    chunks = [c for c in units.chunks if c.doc_id in keep]
    base = load_encoder("minilm")
    modes = {
        "plain": None,
        **{f"trained@{n}": get_situated("trained", base, window_tokens=n) for n in windows},
    }
    base.embed_documents([c.text for c in chunks[:64]])  # warm up
    total = dict.fromkeys(modes, 0.0)
    names = list(modes)
    for rep in range(3):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            started = time.process_time()
            if modes[name] is None:
                base.embed_documents([c.text for c in chunks])
            else:
                modes[name].embed_chunks(chunks)
            total[name] += time.process_time() - started
    for name, seconds in total.items():
        print(
            f"{len(chunks)} chunks, {name}: {seconds / 3:.1f} CPU s ({seconds / total['plain']:.2f}x plain)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--windows", default="512,256,128")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--timing", type=int, metavar="DOCS", help="time instead of scoring")
    parser.add_argument(
        "--adapters",
        default="",
        help="adapter files to score too (comma-separated), at their own window",
    )
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain-chunk row")
    parser.add_argument("--no-residual", action="store_true", help="leave out the residual row")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",") if w]
    adapters = [a for a in args.adapters.split(",") if a]
    if args.timing:
        timing(args.data, args.timing, windows)
        return
    for name in args.sets:
        quality(
            args.data,
            name,
            windows,
            adapters,
            with_plain=not args.no_plain,
            with_residual=not args.no_residual,
        )


if __name__ == "__main__":
    main()
