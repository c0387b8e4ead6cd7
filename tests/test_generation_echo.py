"""The echo fake, the Generation types (JSON round trip) and the generator registry."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from rag import confidence as C
from rag.generation import (
    GENERATORS,
    EchoGenerator,
    Generation,
    TransformersGenerator,
    get_generator,
)
from rag.generation.testing import check_generator


def test_meets_the_generator_contract():
    check_generator(EchoGenerator())


def test_echoes_the_last_message_or_answers_with_the_given_text():
    assert EchoGenerator().generate("hello there").text == "hello there"
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "last one"}]
    assert EchoGenerator().generate(messages).text == "last one"
    fixed = EchoGenerator("Paris is the capital")
    gen = fixed.generate("q", max_new_tokens=2)
    assert (gen.text, gen.finish_reason, len(gen.steps)) == ("Paris is", "length", 2)
    assert fixed.calls == ["q"]
    cut = fixed.generate("q", stop=" the")
    assert (cut.text, cut.finish_reason, [s.token for s in cut.steps]) == (
        "Paris is",
        "stop",
        ["Paris", " is"],
    )


def test_confidence_can_depend_on_the_prompt():
    gen = EchoGenerator("Paris", confidence=lambda p: 0.9 if "France" in p else 0.2)
    with_context = gen.generate("France: the capital is Paris")
    without = gen.generate("no context")
    assert C.self_certainty(with_context) > C.self_certainty(without)
    assert with_context.steps[0].logprob == pytest.approx(np.log(0.9))
    with pytest.raises(ValueError, match="strictly between"):
        EchoGenerator("x", confidence=1.0).generate("q")


def test_generation_round_trips_through_json():
    gen = EchoGenerator("Paris is the capital", confidence=0.7).generate("q", top_k_logprobs=3)
    back = Generation.from_dict(json.loads(json.dumps(gen.to_dict())))
    assert back.text == gen.text and back.finish_reason == gen.finish_reason
    assert back.exact
    assert C.score_all(back) == pytest.approx(C.score_all(gen))
    assert list(back.steps[0].top_ids) == list(gen.steps[0].top_ids)


def test_registry_and_light_import():
    assert set(GENERATORS) == {"transformers", "llamacpp", "openai", "langchain", "echo"}
    assert isinstance(get_generator("echo", text="hi"), EchoGenerator)
    assert isinstance(get_generator("transformers", model_path="/nowhere"), TransformersGenerator)
    with pytest.raises(ValueError, match="llamacpp"):
        get_generator("vllm")


def test_importing_generation_loads_no_backend():
    code = (
        "import sys, rag.generation, rag.confidence;"
        "heavy = [m for m in ('torch', 'transformers', 'langchain_core', 'llama_cpp') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)
