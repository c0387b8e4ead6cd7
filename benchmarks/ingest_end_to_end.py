"""End-to-end ingestion with the same model and the same chunks: ours against LangChain + Chroma
and LlamaIndex's IngestionPipeline (issue 11, "A pipelined ingest").

    python benchmarks/ingest_end_to_end.py WORKDIR [--set scifact|documents] [--limit N]
        [--repeats R] [--corpus JSONL] [--documents DIR] [--pipelines ours,langchain,...]

The documents (SciFact's ``corpus.jsonl``, title + text, or the files under
``shared/data/documents`` parsed by ``connectors.directory.load_directory``) are parsed and
chunked once here by our default recursive chunker; the chunk texts go to ``WORKDIR/chunks.json``.
Each pipeline then runs in its own child process (peak RSS is the child's ``ru_maxrss``, read from
``RUSAGE_CHILDREN`` by a fresh probe process, as in ``index_footprint.py``), into its own store:

- ``ours``: ``rag.Index.create(root, ["minilm"], store="chroma")`` and ``index.ingest(documents)``
  with the default backend (``RAG_BACKEND`` unset: ``auto``). It parses (``documents`` set) and
  chunks itself, writes the docstore and Chroma. Stages are timed by wrapping the parse
  generator, ``rag.index.ingest.chunk_document`` and the embedder passed as ``embedders=``;
  "store" is the rest (Chroma, docstore, manifest).
- ``langchain``: ``langchain_chroma.Chroma.add_texts`` in batches of 256 chunk texts, with an
  ``Embeddings`` calling ``SentenceTransformer.encode(texts, batch_size=32)`` (float32).
- ``llamaindex-10`` / ``llamaindex-32``: ``IngestionPipeline(transformations=[embedding],
  vector_store=ChromaVectorStore)`` (or ``VectorStoreIndex(nodes)``'s in-memory
  SimpleVectorStore when ``llama-index-vector-stores-chroma`` is missing) over ``TextNode``s,
  with a ``BaseEmbedding`` over the same SentenceTransformer at ``embed_batch_size`` 10 (its
  default) and 32.

The peers get the chunk texts ready-made, so their wall time has no parse or chunk stage; ours
includes both. Model loading (and one warm-up embedding) is outside the timed ingest and shown
as "load s". Torch threads are left at their defaults (the peers: torch's, one per core; ours:
the free cores, ``rag.encoders.threads``). Only time and memory are measured, not quality.
Pipelines run interleaved (ours, langchain, llamaindex, ours, ...) for ``--repeats`` rounds;
medians are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chroma

DATA = Path(os.environ.get("RAG_SHARED_DATA", "/work/shared/data"))
PIPELINES = ("ours", "langchain", "llamaindex-10", "llamaindex-32")
LANGCHAIN_BATCH = 256


# -- inputs ------------------------------------------------------------------------------------


def scifact_documents(corpus: Path, limit: int | None) -> list[Any]:
    from rag.types import Document

    docs = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            title, body = row.get("title", ""), row["text"]
            if not body.strip():
                continue
            text = f"{title}\n\n{body}"
            docs.append(
                Document(
                    id=str(row["_id"]),
                    text=text,
                    source=f"/bench/scifact/{row['_id']}.txt",
                    content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    title=title,
                )
            )
            if limit is not None and len(docs) >= limit:
                break
    return docs


def directory_documents(folder: Path, limit: int | None) -> Iterator[Any]:
    """Parsed Documents under ``folder`` (files that fail to parse are skipped)."""
    from connectors.directory import load_directory
    from rag.types import Document

    n = 0
    for item in load_directory(folder):
        if isinstance(item, Document):
            yield item
            n += 1
            if limit is not None and n >= limit:
                return


def documents_of(args: argparse.Namespace) -> Iterator[Any]:
    if args.set == "scifact":
        return iter(scifact_documents(args.corpus, args.limit))
    return directory_documents(args.documents, args.limit)


# -- the pipelines (each in a child process) --------------------------------------------------


def model_path() -> str:
    from rag.encoders.models import minilm_path

    return str(minilm_path())


class TimedEncoder:
    """A SentenceTransformer whose ``encode`` time is added up (float32, batch 32 unless told)."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path(), device="cpu")
        self.seconds = 0.0

    def encode(self, texts: list[str], batch_size: int = 32) -> list[list[float]]:
        start = time.perf_counter()
        vectors = self.model.encode(texts, batch_size=batch_size, show_progress_bar=False)
        self.seconds += time.perf_counter() - start
        return vectors.tolist()


def run_ours(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    import rag.index.ingest as ingest_module
    from rag import Index

    start = time.perf_counter()
    index = Index.create(root, ["minilm"], store="chroma")
    encoder = index.encoder("minilm")
    encoder.embed_documents(["warm up"])
    entry = index.config.encoders[0]
    backend = getattr(encoder, "backend", "?")
    load = time.perf_counter() - start

    timed = {"parse": 0.0, "chunk": 0.0, "embed": 0.0}
    chunk_document = ingest_module.chunk_document

    def timed_chunk(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return chunk_document(*a, **k)
        finally:
            timed["chunk"] += time.perf_counter() - t

    ingest_module.chunk_document = timed_chunk  # type: ignore[assignment]
    embed = index.chunk_embedder(entry, False)

    def timed_embed(chunks: Any) -> Any:
        t = time.perf_counter()
        try:
            return embed(chunks)
        finally:
            timed["embed"] += time.perf_counter() - t

    def timed_documents() -> Iterator[Any]:
        it = documents_of(args)
        while True:
            t = time.perf_counter()
            try:
                doc = next(it)
            except StopIteration:
                return
            finally:
                timed["parse"] += time.perf_counter() - t
            yield doc

    start = time.perf_counter()
    report = index.ingest(timed_documents(), embedders={entry.name: timed_embed})
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "load": load,
        "docs": len(report.ingested),
        "chunks": report.chunks_added,
        "parse": timed["parse"],
        "chunk": timed["chunk"],
        "embed": timed["embed"],
        "note": f"backend {backend}, torch threads set by rag",
    }


def load_chunks(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "chunks.json").read_text("utf-8"))


def run_langchain(workdir: Path, root: Path) -> dict[str, Any]:
    import torch
    from langchain_core.embeddings import Embeddings

    try:
        from langchain_chroma import Chroma

        store_kind = "langchain_chroma.Chroma"
    except ImportError:  # pragma: no cover - the fallback the issue allows
        Chroma = None
        store_kind = "InMemoryVectorStore"

    data = load_chunks(workdir)
    start = time.perf_counter()
    encoder = TimedEncoder()

    class SentenceEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encoder.encode(texts, batch_size=32)

        def embed_query(self, text: str) -> list[float]:
            return encoder.encode([text])[0]

    embeddings = SentenceEmbeddings()
    embeddings.embed_query("warm up")
    encoder.seconds = 0.0
    if Chroma is not None:
        store = Chroma("bench", embedding_function=embeddings, persist_directory=str(root))
    else:  # pragma: no cover
        from langchain_core.vectorstores import InMemoryVectorStore

        store = InMemoryVectorStore(embeddings)
    load = time.perf_counter() - start

    texts, ids = data["texts"], data["ids"]
    start = time.perf_counter()
    for i in range(0, len(texts), LANGCHAIN_BATCH):
        batch = slice(i, i + LANGCHAIN_BATCH)
        store.add_texts(texts[batch], ids=ids[batch])
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "load": load,
        "docs": data["docs"],
        "chunks": len(texts),
        "embed": encoder.seconds,
        "note": f"{store_kind}, torch threads {torch.get_num_threads()}",
    }


def run_llamaindex(workdir: Path, root: Path, batch_size: int) -> dict[str, Any]:
    import torch
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.schema import TextNode

    data = load_chunks(workdir)
    start = time.perf_counter()
    encoder = TimedEncoder()

    class SentenceEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return encoder.encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return encoder.encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return encoder.encode(texts, batch_size=32)

    embedding = SentenceEmbedding(model_name="minilm", embed_batch_size=batch_size)
    embedding.get_text_embedding("warm up")
    encoder.seconds = 0.0
    try:
        import chromadb
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = chromadb.PersistentClient(path=str(root))
        vector_store: Any = ChromaVectorStore(chroma_collection=client.create_collection("bench"))
        store_kind = "ChromaVectorStore"
    except ImportError:
        vector_store, store_kind = None, "SimpleVectorStore (VectorStoreIndex)"
    load = time.perf_counter() - start

    nodes = [TextNode(text=t, id_=i) for t, i in zip(data["texts"], data["ids"], strict=True)]
    start = time.perf_counter()
    pipeline = IngestionPipeline(transformations=[embedding], vector_store=vector_store)
    embedded = pipeline.run(nodes=nodes)
    if vector_store is None:
        from llama_index.core import VectorStoreIndex

        VectorStoreIndex(embedded, embed_model=embedding)  # nodes carry embeddings: not re-embedded
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "load": load,
        "docs": data["docs"],
        "chunks": len(embedded),
        "embed": encoder.seconds,
        "note": f"{store_kind}, embed_batch_size {batch_size}, torch threads "
        f"{torch.get_num_threads()}",
    }


def child(args: argparse.Namespace) -> None:
    root = args.workdir / f"store-{args.child}"
    shutil.rmtree(root, ignore_errors=True)
    if args.child == "ours":
        result = run_ours(args, root)
    elif args.child == "langchain":
        result = run_langchain(args.workdir, root)
    else:
        result = run_llamaindex(args.workdir, root, int(args.child.rsplit("-", 1)[1]))
    shutil.rmtree(root, ignore_errors=True)
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent ---------------------------------------------------------------------------------

PROBE = (
    "import resource, subprocess, sys\n"
    "out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True)\n"
    "sys.stderr.write(out.stderr[-4000:])\n"
    "print(out.stdout)\n"
    "print('RSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run_child(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """One pipeline in a child, and the child's peak RSS in MB."""
    cmd = [sys.executable, str(Path(__file__).resolve()), str(args.workdir), "--child", name]
    cmd += ["--set", args.set, "--corpus", str(args.corpus), "--documents", str(args.documents)]
    if args.limit is not None:
        cmd += ["--limit", str(args.limit)]
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        elif line.startswith("RSS "):
            result["rss_mb"] = int(line.split()[1]) / 1024
    return result


def write_chunks(args: argparse.Namespace) -> tuple[int, int, float]:
    """Parse and chunk once with our default chunker; the texts for the peers. Returns
    (documents, chunks, seconds)."""
    from rag.chunking import get_chunker

    start = time.perf_counter()
    chunker = get_chunker("recursive")
    texts, ids, docs = [], [], 0
    for doc in documents_of(args):
        docs += 1
        for chunk in chunker.chunk(doc):
            texts.append(chunk.text)
            ids.append(f"c{len(ids)}")
    seconds = time.perf_counter() - start
    data = {"docs": docs, "texts": texts, "ids": ids}
    (args.workdir / "chunks.json").write_text(json.dumps(data), "utf-8")
    return docs, len(texts), seconds


def median(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    return statistics.median(values) if values else float("nan")


def secs(value: float) -> str:
    """Seconds to one decimal, or to three significant digits under 10 s (a tiny run's wall
    time is never printed as 0.0)."""
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def share(part: float, wall: float) -> str:
    return f"{100 * part / wall:.0f}%" if wall > 0 else "-"


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    ours = median(results["ours"], "wall") if results.get("ours") else float("nan")
    ours_rss = median(results["ours"], "rss_mb") if results.get("ours") else float("nan")
    print(
        "| pipeline | docs | chunks | load s | wall s | docs/s | chunks/s | parse+chunk "
        "| embed | store + rest | peak RSS MB | wall / ours | RSS / ours |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        if not rows:
            continue
        wall, embed = median(rows, "wall"), median(rows, "embed")
        prep = median(rows, "parse") + median(rows, "chunk") if name == "ours" else 0.0
        docs, chunks, rss = rows[0]["docs"], rows[0]["chunks"], median(rows, "rss_mb")
        print(
            f"| {name} | {docs} | {chunks} | {median(rows, 'load'):.1f} | {secs(wall)} "
            f"| {docs / wall:.1f} | {chunks / wall:.1f} "
            f"| {share(prep, wall) if name == 'ours' else '(given)'} | {share(embed, wall)} "
            f"| {share(wall - embed - prep, wall)} | {rss:.0f} | {wall / ours:.2f} "
            f"| {rss / ours_rss:.2f} |",
            flush=True,
        )
    for name, rows in results.items():
        if rows:
            walls = ", ".join(f"{r['wall']:.1f}" for r in rows)
            print(f"- {name}: {rows[0]['note']}; wall s per repeat: {walls}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--set", choices=("scifact", "documents"), default="scifact")
    ap.add_argument("--limit", type=int, default=None, help="at most N documents")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=DATA / "scifact" / "corpus.jsonl")
    ap.add_argument("--documents", type=Path, default=DATA / "documents")
    ap.add_argument("--pipelines", default=",".join(PIPELINES))
    ap.add_argument("--child", choices=PIPELINES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args)
        return
    names = [n for n in args.pipelines.split(",") if n]
    unknown = set(names) - set(PIPELINES)
    if unknown:
        ap.error(f"unknown pipelines: {sorted(unknown)}")
    docs, chunks, seconds = write_chunks(args)
    print(
        f"set {args.set}: {docs} documents, {chunks} chunks (recursive, defaults; parse + chunk "
        f"{seconds:.1f} s here, once, for the peers); RAG_BACKEND="
        f"{os.environ.get('RAG_BACKEND', '(unset)')}; repeats {args.repeats}",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names:  # interleaved: ours, langchain, llamaindex, ours, ...
            row = run_child(args, name)
            results[name].append(row)
            print(
                f"repeat {r + 1} {name}: {row['wall']:.1f} s, {row['rss_mb']:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    report(results)


if __name__ == "__main__":
    main()
