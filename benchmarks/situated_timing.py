"""Interleaved CPU timing of situated modes vs plain on the same chunks (SciFact sample).

Blocks of documents; in each block every mode encodes the block's chunks, the mode order rotating
per block, so load changes on this shared machine hit every mode alike. Prints per-mode seconds
and the ratio to plain. Usage: timing.py N_DOCS BLOCK MODES OUT.json [DATASET [CHUNKING]]"""

import json
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from rag.offline import apply_offline_env

apply_offline_env()
from rag.encoders.registry import load_encoder
from rag.encoders.situated import get_situated
from rag.eval.beir import BeirDataset, load_beir
from rag.eval.runner import chunked_units, make_chunker

n_docs, block, modes, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
name = sys.argv[5] if len(sys.argv) > 5 else "scifact"
chunking = sys.argv[6] if len(sys.argv) > 6 else "packed"
full = load_beir(f"/work/shared/data/{name}", "test")
ids = list(full.corpus)[:n_docs]
enc = load_encoder("minilm")
encoders = {
    "plain": get_situated("plain", enc),
    "prefix": get_situated("prefix", enc),
    "sitemb": get_situated("sitemb", enc),
    "late": get_situated("late", enc),
    "late_b1": get_situated("late", enc, window_batch_size=1),
}
totals = {m: 0.0 for m in modes}
cpu = {m: 0.0 for m in modes}  # process CPU seconds (all threads): robust to other jobs' load
n_chunks = 0
enc.embed_documents(["warm up"] * 8)
for b, start in enumerate(range(0, len(ids), block)):
    part = BeirDataset(name, {i: full.corpus[i] for i in ids[start : start + block]}, {}, {})
    chunks = chunked_units(part, make_chunker(64, chunking=chunking)).chunks
    n_chunks += len(chunks)
    order = modes[b % len(modes) :] + modes[: b % len(modes)]
    for m in order:
        t, c = time.perf_counter(), time.process_time()
        encoders[m].embed_chunks(chunks)
        totals[m] += time.perf_counter() - t
        cpu[m] += time.process_time() - c
    print(
        b,
        len(chunks),
        {m: round(v, 1) for m, v in totals.items()},
        {m: round(v, 1) for m, v in cpu.items()},
        flush=True,
    )
result = {
    "dataset": name,
    "chunking": chunking,
    "docs": len(ids),
    "chunks": n_chunks,
    "block_docs": block,
    "seconds": totals,
    "x_plain": {m: totals[m] / totals["plain"] for m in modes},
    "cpu_seconds": cpu,
    "cpu_x_plain": {m: cpu[m] / cpu["plain"] for m in modes},
}
print(json.dumps(result, indent=1))
json.dump(result, open(out, "w"), indent=1)
