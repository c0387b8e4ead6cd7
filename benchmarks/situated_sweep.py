"""Design sweep for situated encoders (MiniLM, fp16-rounded weights run in fp32): every mode,
context variants and residual alphas on the three sets. Exploration only; the reported figures
come from `rag eval` on the CPU."""

import json
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TIKTOKEN_CACHE_DIR", os.path.abspath(".device/tiktoken"))
sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rag.chunking import SentenceChunker  # noqa: E402
from rag.chunking.text import split_sentences  # noqa: E402
from rag.encoders.sentence_transformers import SentenceTransformerEncoder  # noqa: E402
from rag.encoders.situated import get_situated, residual_vectors  # noqa: E402
from rag.eval.beir import load_beir  # noqa: E402
from rag.eval.metrics import evaluate  # noqa: E402
from rag.eval.runner import chunked_units, exact_search, rank_documents, whole_units  # noqa: E402
from rag.types import Chunk  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
OUT = os.environ.get("OUT", "/tmp")
LIMIT = int(os.environ.get("LIMIT_DOCS", "0"))


@dataclass
class OneSentenceChunker(SentenceChunker):
    def cut(self, tokens, start, end):
        return [c for s in split_sentences(tokens.text, start, end) for c in tokens.pack([s])]


class RecordChunker(SentenceChunker):
    def chunk(self, document):
        text = document.text
        a = len(text) - len(text.lstrip())
        b = len(text.rstrip())
        if b <= a:
            return []
        piece = text[a:b]
        return [
            Chunk(
                id=Chunk.make_id(document.id, a, b, piece),
                doc_id=document.id,
                text=piece,
                start=a,
                end=b,
                source=document.source,
                title=document.title,
                context=piece,
                context_start=a,
                context_end=b,
            )
        ]


def load_enc(max_len=None):
    e = SentenceTransformerEncoder(
        ".device/minilm", device=DEV, name="minilm", max_seq_length=max_len
    )
    e.model.to(torch.float32)
    return e


def score(ds, units, vectors, q):
    depth = min(len(units), 100 * units.max_per_doc)
    idx, sc = exact_search(q, np.ascontiguousarray(vectors, dtype=np.float32), depth)
    qids = list(ds.queries)
    run = {
        qid: [d for d, _ in rank_documents(idx[r], sc[r], units.doc_ids, 100)]
        for r, qid in enumerate(qids)
    }
    m = evaluate(run, ds.qrels, ("ndcg@10", "recall@100"))
    return {k: round(v, 4) for k, v in m.items()}


def timed(fn):
    if DEV == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if DEV == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


SETS = [
    ("scifact", [("packed64", SentenceChunker(max_tokens=64))]),
    (
        "climate_fever",
        [("record", RecordChunker(max_tokens=64)), ("packed64", SentenceChunker(max_tokens=64))],
    ),
    (
        "hotpotqa_dev100",
        [
            ("sentence", OneSentenceChunker(max_tokens=64)),
            ("packed64", SentenceChunker(max_tokens=64)),
        ],
    ),
]

results = []
enc256 = load_enc()
enc512 = load_enc(512)
for name, chunkings in SETS:
    ds = load_beir(f".device/data/{name}", "test")
    if LIMIT:
        ds = ds.limit_queries(5)
        keep = {d for q in ds.qrels.values() for d in q}
        keep |= set(list(ds.corpus)[:LIMIT])
        ds.corpus = {k: v for k, v in ds.corpus.items() if k in keep}
    qtexts = [ds.queries[q] for q in ds.queries]
    q = enc256.embed_queries(qtexts)
    wu = whole_units(ds)
    wv, t_whole = timed(lambda: enc256.embed_documents(wu.texts, batch_size=32))
    row = {
        "set": name,
        "chunking": "-",
        "config": "whole",
        **score(ds, wu, wv, q),
        "seconds": round(t_whole, 2),
    }
    print(row, flush=True)
    results.append(row)
    for chunking, chunker in chunkings:
        units = chunked_units(ds, chunker)
        chunks = units.chunks
        docs = {d.id: d for d in units.documents}
        configs = {
            "plain": lambda: get_situated("plain", enc256).embed_chunks(chunks),
            "prefix": lambda: get_situated("prefix", enc256).embed_chunks(chunks),
            "sitemb256": lambda: get_situated("sitemb", enc256).embed_chunks(chunks),
            "sitemb512": lambda: get_situated("sitemb", enc512).embed_chunks(chunks),
            "late512": lambda: get_situated("late", enc256).embed_chunks(chunks),
            "late512_nohead": lambda: get_situated("late", enc256, with_header=False).embed_chunks(
                chunks
            ),
            "late256": lambda: get_situated("late", enc256, window_tokens=256).embed_chunks(chunks),
            "late512_b1": lambda: get_situated("late", enc256, window_batch_size=1).embed_chunks(
                chunks
            ),
        }
        vecs, times = {}, {}
        for cname, fn in configs.items():
            v, t = timed(fn)
            vecs[cname], times[cname] = v.situated, t
        plain = vecs["plain"]
        for cname, v in vecs.items():
            row = {
                "set": name,
                "chunking": chunking,
                "config": cname,
                **score(ds, units, v, q),
                "seconds": round(times[cname], 2),
                "x_plain": round(times[cname] / times["plain"], 2),
                "units": len(units),
            }
            print(row, flush=True)
            results.append(row)
        for cname in ["prefix", "sitemb256", "sitemb512", "late512", "late512_nohead", "late256"]:
            for alpha in (0.25, 0.5, 1.0, 2.0):
                v = residual_vectors(vecs[cname], plain, alpha)
                row = {
                    "set": name,
                    "chunking": chunking,
                    "config": f"{cname}+res{alpha}",
                    **score(ds, units, v, q),
                }
                print(row, flush=True)
                results.append(row)
        # prefix text + late: is the title better as a header inside the window? (already) and
        # prefix residual over late
        v = residual_vectors(vecs["late512"], vecs["prefix"], 0.5)
        row = {
            "set": name,
            "chunking": chunking,
            "config": "late512+prefix0.5",
            **score(ds, units, v, q),
        }
        print(row, flush=True)
        results.append(row)
        json.dump(results, open(os.path.join(OUT, "sweep.json"), "w"), indent=1)
json.dump(results, open(os.path.join(OUT, "sweep.json"), "w"), indent=1)
print("DONE")
