"""ONNX Runtime backend for sentence-transformers encoders: the same vectors, about twice as fast.

The model is exported locally from the installed weights (``torch.onnx``; nothing is downloaded)
once per model and kept in ``cache_root()/onnx``. The exported graph contains the transformer, the
pooling and the L2 normalisation, so one ``session.run`` gives the final vectors. An export is
only used after it is *proven equal*: right after exporting, torch and ONNX Runtime embed the same
probe batch (padded, several lengths) and the export is refused unless every vector's cosine to
torch's is at least ``EXACT_COSINE``.

Speed comes from three things besides the runtime itself: texts are tokenised once and sorted by
length so a batch pads to similar lengths; the batch size follows the length (a token budget per
batch instead of a fixed count); and two sessions are kept, one with a single thread for queries
(one short text gains nothing from threads and suffers most from oversubscription) and one with
the cores that are free when bulk work starts (:func:`rag.encoders.threads.free_cores`).

``int8=True`` gives a dynamically quantised copy (``onnxruntime.quantization``): faster still,
but not equal; its retrieval quality is measured beside fp32 in BENCHMARKS.md.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.encoders.threads import free_cores
from rag.offline import cache_root

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ONNX_INSTALL = "onnx onnxruntime"
EXACT_COSINE = 0.9999
EXPORT_VERSION = "1"
# Padded tokens per bulk batch: 64-token chunks go 128 at a time, 256-token ones 32 at a time.
BATCH_TOKENS = 8192
MAX_BATCH = 256
PROBE_TEXTS = (
    "Short.",
    "A sentence of middling length about retrieval-augmented generation and chunking.",
    " ".join(["Long padded probe text with many repeated words"] * 12),
    "Numbers 3.14, names like O'Neill, and punctuation; all of it!",
)


class OnnxUnavailable(RuntimeError):
    """The ONNX backend cannot serve this model (missing package, unsupported pooling, or an
    export that is not equal to torch); callers fall back to torch."""


def onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _pooling_mode(model: SentenceTransformer) -> tuple[str, bool]:
    """The pooling ("mean" or "cls") and whether vectors are normalised, from the model's modules."""
    names = [type(m).__name__ for m in model]
    if len(names) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        raise OnnxUnavailable(f"modules {names} are not Transformer + Pooling")
    if any(n not in {"Transformer", "Pooling", "Normalize"} for n in names):
        raise OnnxUnavailable(f"modules {names} include one the ONNX export does not handle")
    mode = model[1].get_config_dict().get("pooling_mode")
    if mode not in {"mean", "cls"}:
        raise OnnxUnavailable(f"pooling mode {mode!r} is not supported by the ONNX export")
    return mode, "Normalize" in names


def _fingerprint(location: str, model: SentenceTransformer, int8: bool) -> str:
    import onnxruntime
    import torch

    digest = hashlib.sha256()
    for part in (EXPORT_VERSION, location, torch.__version__, onnxruntime.__version__, str(int8)):
        digest.update(part.encode() + b"\0")
    for name in sorted(os.listdir(location)):
        path = Path(location) / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode() + b"\0")
    return digest.hexdigest()[:16]


def _export(model: SentenceTransformer, dest: Path) -> None:
    """Write the graph (transformer + pooling + normalisation) to ``dest`` atomically."""
    import torch

    mode, normalise = _pooling_mode(model)
    auto_model = model[0].auto_model
    inputs = list(model.tokenizer.model_input_names)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            feed = dict(zip(inputs, tensors, strict=True))
            states = self.inner(**feed).last_hidden_state
            if mode == "cls":
                pooled = states[:, 0]
            else:
                mask = feed["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalise:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return pooled

    # A module in training mode would be exported with dropout and, worse, left in training
    # mode afterwards (the exporter restores the wrapper's mode onto the shared model).
    wrapper = Pooled().eval()
    probe = model.tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
    args = tuple(probe[name] for name in inputs)
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                args,
                str(tmp),
                input_names=inputs,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        auto_model.eval()


def _quantize(source: Path, dest: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def exported_model(
    model: SentenceTransformer, location: str, *, int8: bool = False, folder: Path | None = None
) -> Path:
    """The ONNX file for ``model`` (exported and checked on first use, then reused)."""
    if not onnx_available():
        raise OnnxUnavailable(f"the ONNX backend needs: pip install {ONNX_INSTALL}")
    folder = folder or cache_root() / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(location).name}-{_fingerprint(location, model, False)}"
    fp32 = folder / f"{stem}.onnx"
    if not fp32.exists():
        _export(model, fp32)
        worst = _probe_cosine(model, fp32)
        if worst < EXACT_COSINE:
            fp32.unlink(missing_ok=True)
            raise OnnxUnavailable(
                f"the ONNX export of {location} differs from torch (cosine {worst:.6f} < "
                f"{EXACT_COSINE}); using torch"
            )
    if not int8:
        return fp32
    quantised = folder / f"{stem}.int8.onnx"
    if not quantised.exists():
        _quantize(fp32, quantised)
    return quantised


def _probe_cosine(model: SentenceTransformer, path: Path) -> float:
    import torch

    with torch.no_grad():
        want = model.encode(list(PROBE_TEXTS), convert_to_numpy=True, normalize_embeddings=True)
    runner = OnnxRunner(path, model.tokenizer)
    got = runner.embed(list(PROBE_TEXTS), max_length=model.max_seq_length)
    return float(np.min(np.sum(want * got, axis=1)))


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def length_batches(lengths: Sequence[int], *, budget: int = BATCH_TOKENS) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, each batch's padded size within
    ``budget`` tokens (at most ``MAX_BATCH`` texts): longest first, so a memory problem shows at
    once rather than at the end of a long run."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(1, int(lengths[order[start]]))
        size = max(1, min(MAX_BATCH, budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


class OnnxRunner:
    """Embeds texts with one exported model; thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, path: Path, tokenizer: Any) -> None:
        self.path = path
        self.tokenizer = tokenizer
        self.input_names = list(tokenizer.model_input_names)
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def session(self, purpose: str) -> Any:
        with self._lock:
            if purpose not in self._sessions:
                threads = 1 if purpose == "query" else free_cores()
                self._sessions[purpose] = _session(self.path, threads)
            return self._sessions[purpose]

    def embed(
        self,
        texts: Sequence[str],
        *,
        max_length: int,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """L2-normalised vectors for ``texts`` in their order."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        ids = encoded["input_ids"]
        lengths = [len(x) for x in ids]
        session = self.session("query" if len(texts) <= 2 else "bulk")
        out: np.ndarray | None = None
        for batch in length_batches(lengths):
            width = int(lengths[batch[0]])
            feed = {
                name: _padded(encoded[name], batch, width, self._pad_value(name))
                for name in self.input_names
            }
            vectors = session.run(None, feed)[0]
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        return out

    def _pad_value(self, input_name: str) -> int:
        if input_name == "input_ids":
            return int(self.tokenizer.pad_token_id or 0)
        return 0  # attention mask and token type ids


def _padded(rows: Sequence[Sequence[int]], batch: np.ndarray, width: int, pad: int) -> np.ndarray:
    """``rows[batch]`` right-padded with ``pad`` to ``width``."""
    array = np.full((len(batch), width), pad, dtype=np.int64)
    for row, index in enumerate(batch):
        values = rows[index]
        array[row, : len(values)] = values
    return array
