"""An on-disk cache of document embeddings, so repeated evaluations skip re-encoding a corpus.

One entry per (model, role, list of texts): ``KEY.npy`` (float32 vectors, loaded with
``allow_pickle=False``) beside ``KEY.json`` (format, model fingerprint, role, count, dimension,
and an optional label and unit ids for people reading the folder). ``KEY`` is the SHA-256 of the
fingerprint, the role and every text, so a changed corpus, chunking protocol or model gives a new
entry and a stale one is never read. The folder defaults to ``~/.cache/situated-rag/eval``
(``$RAG_EVAL_CACHE`` overrides it). Files are written through a temp file and ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Encoder

FORMAT = "rag.embedding-cache"
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("RAG_EVAL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "situated-rag" / "eval"


def encoder_fingerprint(encoder: Encoder) -> str:
    """What identifies an encoder's vectors: class, name, dimension, and (when the encoder has
    them) its model location, prefixes and sequence limit."""
    cls = type(encoder)
    parts: list[str] = [f"{cls.__module__}.{cls.__qualname__}", encoder.name, str(encoder.dim)]
    for attr in ("location", "query_prefix", "document_prefix", "_max_seq_length"):
        if hasattr(encoder, attr):
            parts.append(f"{attr}={getattr(encoder, attr)!r}")
    inexact = getattr(encoder, "vector_backend", None)  # bf16 / int8 vectors are not float32's
    if inexact:
        parts.append(f"backend={inexact}")
    return "|".join(parts)


def cache_key(fingerprint: str, role: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for part in (FORMAT, str(FORMAT_VERSION), fingerprint, role, str(len(texts))):
        digest.update(part.encode("utf-8") + b"\x00")
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _replace_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EmbeddingCache:
    """The cache folder: ``load`` returns ``None`` on a miss; ``save`` writes an entry."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def load(self, key: str, count: int) -> np.ndarray | None:
        npy, meta = self.paths(key)
        if not (npy.exists() and meta.exists()):
            return None
        try:
            info = json.loads(meta.read_text("utf-8"))
            vectors = np.load(npy, allow_pickle=False)
        except (OSError, ValueError):  # a damaged entry is a miss; it gets rewritten
            return None
        if info.get("format") != FORMAT or info.get("count") != count or len(vectors) != count:
            return None
        return vectors

    def save(self, key: str, vectors: np.ndarray, meta: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        npy, meta_path = self.paths(key)
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        _replace_atomic(npy, lambda fh: np.save(fh, array, allow_pickle=False))
        info = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **meta,
            "count": len(array),
            "dim": int(array.shape[1]) if array.ndim == 2 else 0,
        }
        _replace_atomic(meta_path, lambda fh: fh.write(json.dumps(info).encode("utf-8")))


class CachedEncoder(Encoder):
    """An encoder whose ``embed_documents`` results are cached on disk (queries are not: they
    are cheap, and query latency must be measured on the real encoder).

    ``label`` (e.g. ``"scifact/whole"``) and ``ids`` (set per call through :meth:`embed_units`)
    are written into the entry's JSON for people reading the folder; they are not part of the key.
    """

    def __init__(
        self,
        encoder: Encoder,
        cache: EmbeddingCache | None = None,
        *,
        label: str = "",
    ) -> None:
        self.inner = encoder
        self.cache = cache or EmbeddingCache()
        self.label = label
        self.name = encoder.name
        self.dim = encoder.dim
        self.fingerprint = encoder_fingerprint(encoder)
        self.hits = 0
        self.misses = 0

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        if role != "document":
            return self.inner._embed(
                texts, role, batch_size=batch_size, show_progress=show_progress
            )
        return self.embed_units(texts, batch_size=batch_size, show_progress=show_progress)

    def embed_units(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Document vectors for ``texts``, from the cache when the same texts were embedded
        before by the same model."""
        texts = list(texts)
        key = cache_key(self.fingerprint, "document", texts)
        cached = self.cache.load(key, len(texts))
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        vectors = self.inner.embed_documents(
            texts, batch_size=batch_size, show_progress=show_progress
        )
        meta: dict[str, Any] = {"model": self.fingerprint, "role": "document", "label": self.label}
        if ids is not None:
            meta["ids"] = list(ids)
        self.cache.save(key, vectors, meta)
        return np.asarray(vectors, dtype=np.float32)
