"""The trained situated encoder: adapters, training examples, deterministic resumable training,
the ``trained`` mode and ``rag tune`` on a real index (MiniLM, a few steps on a tiny corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.encoders.lora import LoraSettings, add_lora, lora_arrays, merge_lora, read_adapter
from rag.tuning.examples import Window, cloze_example, judged_examples, sentence_ranges
from rag.tuning.trainer import TrainSettings, batch_order

STOP = 9  # the "." token of these synthetic windows


def test_sentence_ranges_split_at_stop_tokens() -> None:
    ids = [1, 5, 5, 5, 5, STOP, 6, 6, 6, 6, STOP, 7, 2]
    assert sentence_ranges(ids, 1, 12, {STOP}) == [(1, 6), (6, 11)]  # "7" alone is too short


def test_cloze_removes_the_sentence_and_shifts_later_spans() -> None:
    ids = (1, 5, 5, 5, 5, STOP, 6, 6, 6, 6, STOP, 8, 8, 8, 8, STOP, 2)
    window = Window("d", ids, ((1, 11), (11, 16)))
    seen = set()
    for seed in range(40):
        e = cloze_example(
            window, np.random.default_rng(seed), stops={STOP}, cls=[1], sep=[2], keep_probability=0
        )
        assert e is not None and e.query[0] == 1 and e.query[-1] == 2
        sentence = e.query[1:-1]
        (positive,) = e.positives
        if positive == 1:  # a chunk of one sentence keeps it (nothing else to pool)
            assert e.window == ids and e.spans == window.spans
            continue
        assert len(e.window) == len(ids) - len(sentence)
        first, end = e.spans[0]
        assert e.window[first:end] in ((5, 5, 5, 5, STOP), (6, 6, 6, 6, STOP))
        assert e.window[first:end] != sentence  # the query's sentence is gone from its chunk
        assert e.window[e.spans[1][0] : e.spans[1][1]] == (8, 8, 8, 8, STOP)
        seen.add(sentence)
    assert len(seen) == 2  # both sentences of the first chunk get drawn


def test_judged_examples_make_every_chunk_of_the_document_positive() -> None:
    windows = [Window("a", (1, 3, 3, 2), ((1, 2), (2, 3))), Window("b", (1, 4, 2), ((1, 2),))]
    out = judged_examples(windows, {"q": (1, 7, 2)}, {"q": {"a": 1, "b": 0}})
    assert [(e.doc_id, e.positives) for e in out] == [("a", (0, 1))]


def test_batch_order_is_seeded_and_covers_an_epoch() -> None:
    settings = TrainSettings(batch_size=4, seed=3)
    epoch = [i for step in range(5) for i in batch_order(20, settings, step)]
    assert sorted(epoch) == list(range(20))
    assert batch_order(20, settings, 7) == batch_order(20, settings, 7)
    assert batch_order(20, settings, 0) != batch_order(20, TrainSettings(batch_size=4, seed=4), 0)


def _tiny_bert():  # noqa: ANN202
    torch = pytest.importorskip("torch")
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query = nn.Linear(8, 8)
            self.value = nn.Linear(8, 8)

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.query(x) + self.value(x)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.ModuleList([Block() for _ in range(3)])

        def forward(self, x):  # noqa: ANN001, ANN202
            for block in self.layer:
                x = block(x)
            return x

    torch.manual_seed(0)
    return torch, Tiny()


def test_lora_starts_as_the_base_and_merges_exactly() -> None:
    torch, model = _tiny_bert()
    x = torch.randn(4, 8)
    before = model(x).detach()
    names = add_lora(
        model, LoraSettings(rank=2, alpha=4, targets=("query", "value"), first_layer=1)
    )
    assert names == ["layer.1.query", "layer.1.value", "layer.2.query", "layer.2.value"]
    torch.testing.assert_close(model(x), before)  # B starts at zero
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1)
    adapted = model(x).detach()
    assert not torch.allclose(adapted, before)
    assert set(lora_arrays(model)) == {f"{n}.{m}" for n in names for m in "ab"}
    merge_lora(model)
    assert not any(hasattr(m, "lora_a") for m in model.modules())
    torch.testing.assert_close(model(x), adapted, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def minilm():  # noqa: ANN201
    pytest.importorskip("sentence_transformers")
    from rag.encoders.registry import load_encoder

    return load_encoder("minilm")


DOC = (
    "Mitochondria make most of the cell's energy. They hold their own small genome. "
    "Their DNA is inherited from the mother. Mutations in it cause rare diseases. "
    "Heart muscle cells contain thousands of them. Exercise increases their number."
)


def _chunks(n_docs: int = 6) -> list:
    from rag.chunking import get_chunker
    from rag.eval.units import corpus_document

    chunker = get_chunker("sentence", max_tokens=24)
    docs = [
        corpus_document("t", f"d{i}", f"Cells {i}", f"{DOC} Variant {i}.") for i in range(n_docs)
    ]
    return [c for d in docs for c in chunker.chunk(d)]


@pytest.mark.slow
def test_training_is_deterministic_and_a_time_budget_resumes(minilm, tmp_path: Path) -> None:
    from rag.tuning.situated import make_examples, tune_situated

    examples = make_examples(minilm, _chunks(), seed=0)
    assert examples and all(e.positives for e in examples)
    settings = TrainSettings(steps=4, batch_size=3, seed=0, checkpoint_every=1)
    straight = tune_situated(minilm, examples, settings, out=tmp_path / "a.npz")
    assert straight.finished and straight.steps == 4 and np.isfinite(straight.losses).all()
    # a spent time budget stops before the first step; the same run without it resumes
    cut = TrainSettings(steps=4, batch_size=3, seed=0, checkpoint_every=1, max_seconds=0.0)
    ckpt = tmp_path / "ckpt"
    first = tune_situated(minilm, examples, cut, out=tmp_path / "b.npz", checkpoint=ckpt)
    assert not first.finished and first.steps == 0
    state = json.loads((ckpt / "state.json").read_text())
    assert state["losses"] == []
    resumed = tune_situated(minilm, examples, settings, out=tmp_path / "b.npz", checkpoint=ckpt)
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4)
    _, info, a = read_adapter(tmp_path / "a.npz")
    _, _, b = read_adapter(tmp_path / "b.npz")
    assert info["base"] == "minilm" and info["steps"] == 4
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-3)


@pytest.mark.slow
def test_resume_after_an_interruption_matches_an_uninterrupted_run(minilm, tmp_path: Path) -> None:
    from rag.tuning import trainer
    from rag.tuning.situated import make_examples, tune_situated

    examples = make_examples(minilm, _chunks(), seed=1)
    settings = TrainSettings(steps=4, batch_size=3, seed=1, checkpoint_every=1)
    straight = tune_situated(minilm, examples, settings, out=tmp_path / "a.npz")

    calls = {"n": 0}
    real_loss = trainer.batch_loss

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    ckpt = tmp_path / "ckpt"
    trainer.batch_loss = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            tune_situated(minilm, examples, settings, out=tmp_path / "b.npz", checkpoint=ckpt)
    finally:
        trainer.batch_loss = real_loss
    assert len(json.loads((ckpt / "state.json").read_text())["losses"]) == 2
    resumed = tune_situated(minilm, examples, settings, out=tmp_path / "b.npz", checkpoint=ckpt)
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4)


@pytest.mark.slow
def test_trained_mode_adapts_a_private_copy(minilm, tmp_path: Path) -> None:
    from rag.encoders.situated import get_situated
    from rag.tuning.situated import make_examples, tune_situated

    chunks = _chunks(3)
    examples = make_examples(minilm, chunks, seed=0)
    tune_situated(
        minilm,
        examples,
        TrainSettings(steps=2, batch_size=3, learning_rate=5e-3),
        out=tmp_path / "x.npz",
    )
    before = minilm.embed_query("energy of the cell")
    trained = get_situated(f"trained:{tmp_path / 'x.npz'}", minilm)
    late = get_situated("late", minilm)
    assert trained.name == "minilm+trained" and trained.options()["adapter"] == "x"
    s, plain = trained.embed_chunks(chunks), late.embed_chunks(chunks)
    assert s.situated.shape == plain.situated.shape
    np.testing.assert_allclose(np.linalg.norm(s.situated, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(s.situated, plain.situated, atol=1e-4)  # the adapter changed them
    np.testing.assert_array_equal(minilm.embed_query("energy of the cell"), before)  # base intact
    with pytest.raises(FileNotFoundError, match="no situated adapter"):
        get_situated("trained:nope", minilm)
    with pytest.raises(ValueError, match="only trained takes an argument"):
        get_situated("late:x", minilm)


def test_training_with_the_window_vector_records_it_and_encodes_with_it(
    minilm, tmp_path: Path
) -> None:
    from rag.encoders.situated import get_situated
    from rag.tuning.situated import make_examples, tune_situated

    chunks = _chunks(3)
    examples = make_examples(minilm, chunks, seed=0)
    settings = TrainSettings(steps=2, batch_size=3, learning_rate=5e-3, context_weight=0.5)
    plain_log = tune_situated(
        minilm,
        examples,
        TrainSettings(steps=2, batch_size=3, learning_rate=5e-3),
        out=tmp_path / "a.npz",
    )
    log = tune_situated(minilm, examples, settings, out=tmp_path / "b.npz")
    assert log.losses != plain_log.losses  # the loss sees the window vector
    _, info, _ = read_adapter(tmp_path / "b.npz")
    assert info["context_weight"] == 0.5
    trained = get_situated(f"trained:{tmp_path / 'b.npz'}", minilm)
    assert trained.context_weight == 0.5 and trained.options()["context_weight"] == 0.5
    spans, windows = trained.late_parts(chunks)
    expected = spans + 0.5 * windows
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(trained.embed_chunks(chunks).situated, expected, atol=1e-6)
    override = get_situated(f"trained:{tmp_path / 'b.npz'}", minilm, context_weight=0.0)
    np.testing.assert_allclose(override.embed_chunks(chunks).situated, spans, atol=1e-6)


def test_training_can_start_from_an_adapter(minilm, tmp_path: Path) -> None:
    from rag.tuning.situated import make_examples, tune_situated

    examples = make_examples(minilm, _chunks(3), seed=0)
    first = TrainSettings(steps=2, batch_size=3, learning_rate=5e-3)
    tune_situated(minilm, examples, first, out=tmp_path / "a.npz")
    still = TrainSettings(steps=1, batch_size=3, learning_rate=0.0)
    tune_situated(minilm, examples, still, out=tmp_path / "b.npz", initial=tmp_path / "a.npz")
    _, _, a = read_adapter(tmp_path / "a.npz")
    _, _, b = read_adapter(tmp_path / "b.npz")
    assert a.keys() == b.keys() and any(np.abs(v).max() > 0 for v in a.values())
    for key in a:  # a zero learning rate keeps the starting point exactly
        np.testing.assert_array_equal(a[key], b[key])
    other = TrainSettings(steps=1, batch_size=3, lora=LoraSettings(rank=4))
    with pytest.raises(ValueError, match="LoRA settings"):
        tune_situated(minilm, examples, other, out=tmp_path / "c.npz", initial=tmp_path / "a.npz")


@pytest.mark.slow
def test_rag_tune_adapts_an_index_and_search_uses_it(minilm, tmp_path: Path, capsys) -> None:
    from rag.cli import main
    from rag.index import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"cells{i}.md").write_text(f"# Cells {i}\n\n{DOC}\n\n## More\n\n{DOC}\n", "utf-8")
    index = tmp_path / "idx"
    assert (
        main(["ingest", str(docs), "--index", str(index), "--store", "memory", "--no-progress"])
        == 0
    )
    before = Index(index).search(
        "where does mitochondrial DNA come from?", k=3, dedup=False
    )  # near-copies
    args = ["tune", "--index", str(index), "--steps", "2", "--batch-size", "3", "--no-progress"]
    assert main(args) == 0
    assert "tuned minilm" in capsys.readouterr().out
    config = json.loads((index / "index.json").read_text())
    entry = next(e for e in config["encoders"] if e["name"] == "minilm")
    assert entry["situated"] == "trained:tuned/minilm.npz"
    assert (index / "tuned" / "minilm.npz").is_file()
    after = Index(index).search("where does mitochondrial DNA come from?", k=3, dedup=False)
    assert len(after) == len(before) == 3
    assert [h.score for h in after] != [h.score for h in before]  # re-embedded, new query model
    # a second run resumes the finished checkpoint: nothing to train, only re-embedding
    assert main(args) == 0
    assert "2 steps, finished" in capsys.readouterr().out


def test_eval_takes_a_trained_adapter_path_and_names_the_run_by_it() -> None:
    from rag.eval.config import EvalConfig
    from rag.eval.systems import mode_label

    config = EvalConfig(protocol="chunked", situated=("plain", "trained:/x/scifact_only.npz"))
    assert [mode_label(m) for m in config.situated] == ["plain", "trained:scifact_only"]
    with pytest.raises(ValueError, match="situated modes"):
        EvalConfig(protocol="chunked", situated=("late:x",))
