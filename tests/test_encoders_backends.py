"""Encoder backends (torch, bf16, ONNX Runtime): the same vectors as torch float32, a clear
choice of backend, a fallback when one cannot serve, and caches that keep inexact vectors apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.encoders import sentence_transformers as st_module
from rag.encoders.registry import get_spec, load_encoder
from rag.encoders.sentence_transformers import SentenceTransformerEncoder
from rag.encoders.threads import free_cores, usable_cores
from rag.eval.cache import encoder_fingerprint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def location() -> str:
    if not get_spec("minilm").installed:
        pytest.skip("minilm is not installed")
    return load_encoder("minilm").location


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    """Real chunks of different lengths: SciFact abstracts cut at 20 to 600 characters."""
    with open(shared_data / "scifact" / "corpus.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line, _ in zip(fh, range(24), strict=False)]
    return [doc[: 20 + 25 * i] for i, doc in enumerate(docs)]


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


def test_bf16_vectors_equal_float32(location: str, texts: list[str]) -> None:
    torch_enc = SentenceTransformerEncoder(location, backend="torch")
    bf16_enc = SentenceTransformerEncoder(location, backend="bf16")
    want = torch_enc.embed_documents(texts)
    got = bf16_enc.embed_documents(texts)
    assert bf16_enc.backend == "bf16" and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _min_cosine(want, got) >= 0.999
    # a single query is embedded in float32 whatever the backend
    query = ["which genes are linked to obesity?"]
    np.testing.assert_allclose(
        bf16_enc.embed_queries(query), torch_enc.embed_queries(query), atol=1e-5
    )


def test_onnx_vectors_equal_torch(
    location: str, texts: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))  # a fresh export, proven on probe texts
    monkeypatch.setattr(st_module, "_ONNX_RUNNERS", {})
    onnx_enc = SentenceTransformerEncoder(location, backend="onnx")
    want = SentenceTransformerEncoder(location, backend="torch").embed_documents(texts)
    got = onnx_enc.embed_documents(texts)
    assert onnx_enc.backend == "onnx" and onnx_enc.vector_backend is None
    assert _min_cosine(want, got) >= 0.9999
    assert list((tmp_path / "onnx").glob("*.onnx"))  # exported once, kept for the next process
    # a query goes through the one-thread session and gives the same vector as a batch
    one = onnx_enc.embed_queries([texts[3]])
    np.testing.assert_allclose(one[0], onnx_enc.embed_queries(texts[:5])[3], atol=1e-5)


def test_auto_falls_back_to_torch_when_nothing_faster_serves(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.encoders.bf16 as bf16
    import rag.encoders.onnx_runtime as onnx_runtime

    monkeypatch.setattr(bf16, "bf16_native", lambda: False)
    monkeypatch.setattr(onnx_runtime, "onnx_available", lambda: False)
    enc = SentenceTransformerEncoder(location, backend="auto")
    assert enc.backend == "torch" and enc.vector_backend is None


def test_auto_refuses_bf16_that_is_not_equal(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.encoders.bf16 as bf16
    import rag.encoders.onnx_runtime as onnx_runtime

    monkeypatch.setattr(bf16, "bf16_native", lambda: True)
    monkeypatch.setattr(st_module, "_bf16_cosine", lambda location, model: 0.95)
    monkeypatch.setattr(onnx_runtime, "onnx_available", lambda: False)
    assert SentenceTransformerEncoder(location, backend="auto").backend == "torch"
    with pytest.raises(RuntimeError, match="not equal"):
        _ = SentenceTransformerEncoder(location, backend="bf16").backend


def test_backend_names_are_checked(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        SentenceTransformerEncoder(location, backend="cuda-magic")
    monkeypatch.setenv("RAG_BACKEND", "fp8")
    with pytest.raises(ValueError, match="RAG_BACKEND"):
        SentenceTransformerEncoder(location)
    monkeypatch.setenv("RAG_BACKEND", "torch")
    assert SentenceTransformerEncoder(location).backend == "torch"


def test_inexact_vectors_have_their_own_cache_key(location: str) -> None:
    exact = SentenceTransformerEncoder(location, backend="torch")
    bf16_enc = SentenceTransformerEncoder(location, backend="bf16")
    assert encoder_fingerprint(exact) != encoder_fingerprint(bf16_enc)
    assert "backend=bf16" in encoder_fingerprint(bf16_enc)


def test_length_batches_cover_every_text_once_within_the_budget() -> None:
    from rag.encoders.onnx_runtime import MAX_BATCH, length_batches

    lengths = [5, 300, 64, 64, 1, 128, *([64] * 500)]
    batches = length_batches(lengths, budget=1024)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert lengths[batches[0][0]] == 300  # longest first
    for batch in batches:
        widest = max(lengths[i] for i in batch)
        assert len(batch) <= MAX_BATCH and (len(batch) * widest <= 1024 or len(batch) == 1)


def test_free_cores_follow_the_override_and_stay_in_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_THREADS", "3")
    assert free_cores() == 3
    monkeypatch.delenv("RAG_THREADS")
    assert 1 <= free_cores() <= usable_cores()
