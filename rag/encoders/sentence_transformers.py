"""Dense encoders backed by sentence-transformers: a registered offline model, any local folder,
or (when the user allows the hub) any Hugging Face model name.

Sentence-BERT: Reimers & Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese
BERT-Networks", EMNLP 2019.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.base import Encoder
from rag.encoders.threads import free_cores, usable_cores

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ST_INSTALL = "'situated-rag[st]'  (torch, sentence-transformers, transformers)"

# "org/name" or "name": what a Hugging Face repo id looks like (no leading "." "/" "~").
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model_location(name_or_path: str | os.PathLike[str]) -> str:
    """A local folder as an absolute path, or a hub id that can be loaded now; else a clear error.

    Fails fast instead of letting sentence-transformers retry the hub: a path that does not exist
    raises FileNotFoundError, and so does a hub id that is not in the local cache while
    ``HF_HUB_OFFLINE=1`` (the default set by ``rag.offline``).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if not _HUB_ID.match(text):
        raise FileNotFoundError(f"model folder {text!r} does not exist")
    if _hub_offline() and not _in_hub_cache(text):
        raise FileNotFoundError(
            f"{text!r} is neither a local model folder nor in the Hugging Face cache, and "
            "HF_HUB_OFFLINE=1 forbids downloading it; pass a local folder, or export "
            "HF_HUB_OFFLINE=0 to let sentence-transformers download it"
        )
    return text


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    # sentence-transformers also resolves a bare name under its own organisation.
    candidates = [repo_id] if "/" in repo_id else [repo_id, f"sentence-transformers/{repo_id}"]
    return any(isinstance(try_to_load_from_cache(c, "config.json"), str) for c in candidates)


@lru_cache(maxsize=8)
def load_sentence_transformer(location: str, device: str = "cpu") -> SentenceTransformer:
    """Load a model once per process; encoders and retrievers that name the same one share it."""
    from rag.offline import apply_offline_env

    apply_offline_env()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            f"sentence-transformers is not installed; install it with: pip install {ST_INSTALL}"
        ) from exc
    return SentenceTransformer(location, device=device)


BACKENDS = ("auto", "torch", "bf16", "onnx", "onnx-int8")
# Backends whose vectors are not torch float32's to cosine 0.99999: caches keep them apart.
INEXACT_BACKENDS = ("bf16", "onnx-int8")
SMALL_CALL = 2  # texts; at most this many are embedded in float32 whatever the backend


def default_backend() -> str:
    """``$RAG_BACKEND`` if set, else ``auto`` (the fastest backend proven equal to torch)."""
    value = os.environ.get("RAG_BACKEND", "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise ValueError(f"RAG_BACKEND={value!r}; choose one of {', '.join(BACKENDS)}")
    return value


# Per model location (an adapted copy has its own, see situated/trained.py): computed from the
# encoder's own model, never reloaded by location.
_ONNX_RUNNERS: dict[tuple[str, bool], Any] = {}
_BF16_COSINES: dict[str, float] = {}


def _onnx_runner(location: str, model: SentenceTransformer, int8: bool) -> Any:
    from rag.encoders.onnx_runtime import OnnxRunner, exported_model

    with _model_lock(location, "cpu"):
        if (location, int8) not in _ONNX_RUNNERS:
            path = exported_model(model, location, int8=int8)
            _ONNX_RUNNERS[(location, int8)] = OnnxRunner(path, model.tokenizer)
        return _ONNX_RUNNERS[(location, int8)]


def _bf16_cosine(location: str, model: SentenceTransformer) -> float:
    from rag.encoders.bf16 import bf16_cosine

    with _model_lock(location, "cpu"):
        if location not in _BF16_COSINES:
            _BF16_COSINES[location] = bf16_cosine(model)
        return _BF16_COSINES[location]


@cache
def _model_lock(location: str, device: str) -> threading.RLock:
    """One lock per loaded model: calls on one model are serialised (so one encoder's
    ``max_seq_length`` never leaks into another's call), different models run concurrently."""
    return threading.RLock()


class SentenceTransformerEncoder(Encoder):
    """Sentence vectors, pooled as the model's own config says, L2-normalised float32.

    ``query_prefix`` / ``document_prefix`` are prepended by role (E5 needs ``"query: "`` and
    ``"passage: "``). ``max_seq_length`` truncates inputs for this encoder only: the loaded model
    is shared, so the limit is set for the duration of a call (under the model's lock) and then
    restored. ``.model`` is the ``SentenceTransformer`` itself (``model[0].auto_model`` and
    ``.tokenizer`` give token-level access).

    ``backend`` picks what computes the vectors: ``"torch"`` (sentence-transformers, float32),
    ``"bf16"`` (the same under bfloat16 autocast; cosine 0.9999 to float32, 2-3x faster on CPUs
    with native bf16; :mod:`rag.encoders.bf16`), ``"onnx"`` (ONNX Runtime, cosine 0.99999;
    :mod:`rag.encoders.onnx_runtime`), ``"onnx-int8"`` (quantised: faster, not equal) or
    ``"auto"`` (the default, from ``$RAG_BACKEND``): on a CPU, bf16 where the CPU has it and
    it proves equal on probe texts, else ONNX when installed and proven equal, else torch.
    Whatever the backend, a call uses only the cores that are free
    (:func:`rag.encoders.threads.free_cores`), so a query on a busy machine is not slowed by
    oversubscribed threads.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        device: str = "cpu",
        query_prefix: str = "",
        document_prefix: str = "",
        max_seq_length: int | None = None,
        name: str | None = None,
        backend: str | None = None,
    ) -> None:
        backend = backend or default_backend()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if max_seq_length is not None and max_seq_length < 1:
            raise ValueError(f"max_seq_length must be positive, got {max_seq_length}")
        self.location = resolve_model_location(model_name_or_path)
        self.device = device
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._max_seq_length = max_seq_length
        self.model = load_sentence_transformer(self.location, device)
        self.name = name or Path(os.fspath(model_name_or_path)).name or self.location
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        get_dim = getattr(self.model, "get_embedding_dimension", None)
        dim = get_dim() if get_dim else self.model.get_sentence_embedding_dimension()
        if not dim:
            raise ValueError(f"{self.location} does not report an embedding dimension")
        self.dim = int(dim)
        self.requested_backend = backend
        self._runner: Any = None
        self._mode = "torch"
        self._backend_checked = False

    @property
    def backend(self) -> str:
        """The backend in use: ``torch``, ``bf16``, ``onnx`` or ``onnx-int8`` (``auto`` resolved)."""
        self._resolve_backend()
        return self._mode

    @property
    def vector_backend(self) -> str | None:
        """What makes these vectors differ from torch's, for caches: None when they are equal."""
        return self.backend if self.backend in INEXACT_BACKENDS else None

    def _resolve_backend(self) -> None:
        if self._backend_checked:
            return
        self._backend_checked = True
        wanted = self.requested_backend
        if wanted == "torch" or (wanted == "auto" and self.device != "cpu"):
            return
        if wanted == "bf16" or wanted == "auto":
            from rag.encoders.bf16 import BF16_MIN_COSINE, bf16_native

            if wanted == "bf16" or bf16_native():
                cosine = _bf16_cosine(self.location, self.model)
                if cosine >= BF16_MIN_COSINE:
                    self._mode = "bf16"
                    return
                if wanted == "bf16":
                    raise RuntimeError(
                        f"{self.name}: bf16 vectors are not equal to float32's on this machine "
                        f"(cosine {cosine:.5f} < {BF16_MIN_COSINE}); use backend='torch'"
                    )
        from rag.encoders.onnx_runtime import OnnxUnavailable, onnx_available

        if wanted == "auto" and not onnx_available():
            return
        try:
            self._runner = _onnx_runner(self.location, self.model, wanted == "onnx-int8")
            self._mode = wanted if wanted != "auto" else "onnx"
        except OnnxUnavailable as exc:
            if wanted != "auto":
                raise
            warnings.warn(f"{self.name}: {exc}", RuntimeWarning, stacklevel=3)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_seq_length(self) -> int:
        """Tokens per input after which text is cut (this encoder's limit, else the model's)."""
        return int(self._max_seq_length or self.model.max_seq_length)

    def prefix(self, role: str) -> str:
        if role == "query":
            return self.query_prefix
        if role == "document":
            return self.document_prefix
        raise ValueError(f"role must be 'query' or 'document', got {role!r}")

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        prefix = self.prefix(role)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._resolve_backend()
        if self._runner is not None:
            return self._embed_onnx([prefix + t for t in texts], show_progress)
        with _model_lock(self.location, self.device), self._torch_context(len(texts)):
            default_length = self.model.max_seq_length
            if self._max_seq_length is not None:
                self.model.max_seq_length = self._max_seq_length
            try:
                vectors = self.model.encode(
                    [prefix + t for t in texts],
                    batch_size=batch_size,
                    show_progress_bar=show_progress,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
            finally:
                self.model.max_seq_length = default_length
        if self._mode == "bf16":
            from rag.encoders.bf16 import renormalised

            return renormalised(vectors)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def forward_context(self, count: int) -> Iterator[None]:
        """What a forward pass of this encoder's torch model runs under (its backend's bf16
        autocast, the free cores), for callers that run the model themselves: late chunking
        must not run at float32's speed beside plain vectors made in bf16."""
        self._resolve_backend()
        with self._torch_context(count):
            yield

    @contextlib.contextmanager
    def _torch_context(self, count: int) -> Iterator[None]:
        """bf16 autocast when that is the backend (not for a query or two: autocast's casts cost
        more than they save on one short text, measured 25 ms against 20 ms), and intra-op threads set to the free cores
        (never more than torch's own default) for the length of the call."""
        import torch

        before = torch.get_num_threads()
        threads = min(free_cores(), usable_cores())
        if self.device == "cpu" and threads != before:
            torch.set_num_threads(threads)
        try:
            if self._mode == "bf16" and count > SMALL_CALL:
                from rag.encoders.bf16 import bf16_autocast

                with bf16_autocast():
                    yield
            else:
                yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    def _embed_onnx(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if not show_progress:
            return self._runner.embed(texts, max_length=self.max_seq_length)
        from tqdm.auto import tqdm

        with tqdm(total=len(texts), desc=f"Embedding ({self.name})", unit="chunk") as bar:
            return self._runner.embed(texts, max_length=self.max_seq_length, progress=bar.update)
