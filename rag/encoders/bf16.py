"""bfloat16 autocast for sentence-transformers on CPUs that compute in bfloat16 natively.

On a CPU with AMX or AVX-512 BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later), oneDNN
runs the transformer's matrix products in bfloat16 at two to three times the float32 speed,
while accumulating in float32: MiniLM's vectors stay within cosine 0.99998 of float32's
(measured on SciFact chunks, BENCHMARKS.md "Embedding backends"). That makes it the fastest
*exact* backend where the hardware has it (ONNX Runtime float32 is not faster than torch there).

Like the ONNX export, it is used only once proven equal: the probe texts are embedded both ways
and bf16 is refused unless every vector's cosine to float32's is at least ``BF16_MIN_COSINE``.
Elsewhere (no native bf16) autocast would emulate it slowly, so ``auto`` never picks it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from rag.encoders.onnx_runtime import PROBE_TEXTS

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BF16_MIN_COSINE = 0.999
_NATIVE_FLAGS = ("amx_bf16", "avx512_bf16")


@cache
def bf16_native() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (``/proc/cpuinfo`` flags; Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _NATIVE_FLAGS)
    except OSError:
        pass
    return False


@contextlib.contextmanager
def bf16_autocast() -> Iterator[None]:
    import torch

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def renormalised(vectors: np.ndarray) -> np.ndarray:
    """float32 unit vectors (the bf16 normalisation leaves norms a few 1e-3 off one)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def bf16_cosine(model: SentenceTransformer) -> float:
    """The smallest cosine between float32 and bf16 vectors of the probe texts."""
    import torch

    texts = list(PROBE_TEXTS)
    with torch.no_grad():
        want = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    with bf16_autocast():
        got = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    return float(np.min(np.sum(renormalised(want) * renormalised(got), axis=1)))
