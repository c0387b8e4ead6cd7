"""The ``contextual`` situated mode with a fake generator: what is embedded, how prompts are
grouped per document, the context cache, changed documents, failures, and the CLI/index wiring."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag.encoders.situated import SITUATED_MODES, ContextualEncoder, get_situated
from rag.encoders.situated.contextual import (
    DOCUMENT_PROMPT,
    ContextCache,
    aligned_window,
    clean_context,
    contextual_text,
)
from rag.generation import EchoGenerator, GenerationError, GenerationOptions
from rag.generation.base import Prompt
from rag.types import Chunk, Document, Generation, Span, sha256_hex
from tests.fakes import HashEncoder, register_hash_encoder

ALPHA = (
    "Knockout mice lacking the receptor were studied. This effect was abolished in knockout "
    "mice. Wild-type mice showed the usual response to the drug."
)
BETA = "Penguins eat krill in cold water. Their chicks huddle for warmth in winter storms."


class RecordingEncoder(HashEncoder):
    """HashEncoder that records every text it embeds."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _embed(self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool):
        self.seen.extend(texts)
        return super()._embed(texts, role, batch_size=batch_size, show_progress=show_progress)


def chunk_text_of(prompt: str) -> str:
    return prompt.split("<chunk>\n", 1)[1].split("\n</chunk>", 1)[0]


class CountingGenerator(EchoGenerator):
    """Answers "About <chunk's first word>."; records each ``generate_many`` batch and fails
    (GenerationError) for a batch whose prompts contain ``fail_on``."""

    def __init__(self, fail_on: str | None = None, answer: str | None = None) -> None:
        super().__init__(
            text=lambda p: (
                answer if answer is not None else f"About {chunk_text_of(p).split()[0]}."
            ),
            name="counting",
        )
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    def _generate_many(self, prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        texts = [str(p) for p in prompts]
        self.batches.append(texts)
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise GenerationError("server unreachable")
        return super()._generate_many(prompts, options)

    @property
    def prompts(self) -> int:
        return sum(len(b) for b in self.batches)


def make_doc(doc_id: str, text: str, title: str) -> Document:
    return Document(doc_id, text, f"{doc_id}.txt", sha256_hex(text), title, [Span(0, len(text))])


def sentence_chunks(doc: Document) -> list[Chunk]:
    """One chunk per sentence, the whole document as context."""
    chunks, pos = [], 0
    for piece in doc.text.split(". "):
        piece = piece if piece.endswith(".") else piece + "."
        start = doc.text.index(piece, pos)
        end = pos = start + len(piece)
        chunks.append(
            Chunk(
                Chunk.make_id(doc.id, start, end, piece),
                doc.id,
                piece,
                start,
                end,
                doc.source,
                doc.title,
                context=doc.text,
                context_start=0,
                context_end=len(doc.text),
            )
        )
    return chunks


@pytest.fixture
def corpus() -> tuple[list[Chunk], dict[str, Document]]:
    docs = [make_doc("a", ALPHA, "Receptor X"), make_doc("b", BETA, "Penguins")]
    return [c for d in docs for c in sentence_chunks(d)], {d.id: d for d in docs}


def test_embedded_text_is_context_then_chunk(corpus, tmp_path: Path) -> None:
    chunks, docs = corpus
    base, gen = RecordingEncoder(), CountingGenerator()
    before = [c.text for c in chunks]
    enc = ContextualEncoder(base, gen, cache=tmp_path / "c.json")
    vectors = enc.embed_chunks(chunks, documents=docs)
    expected = [f"About {c.text.split()[0]}.\n\n{c.text}" for c in chunks]
    assert base.seen == expected
    assert [c.text for c in chunks] == before  # the stored chunk text is unchanged
    assert vectors.situated.shape == (len(chunks), base.dim) and vectors.chunk is None
    np.testing.assert_allclose(vectors.situated, base.embed_documents(expected), rtol=1e-6)
    assert enc.options() == {
        "mode": "contextual",
        "generator": "counting",
        "max_new_tokens": 64,
        "max_document_tokens": 1024,
        "prompt_version": enc.options()["prompt_version"],
    }
    assert contextual_text("chunk", "") == "chunk"


def test_one_generate_many_per_document_sharing_the_document_prefix(corpus) -> None:
    chunks, docs = corpus
    gen = CountingGenerator()
    ContextualEncoder(HashEncoder(), gen, cache=False).embed_chunks(chunks, documents=docs)
    assert [len(b) for b in gen.batches] == [3, 2]  # document a's three chunks, then b's two
    for batch, doc in zip(gen.batches, docs.values(), strict=True):
        prefix = DOCUMENT_PROMPT.format(document=f"{doc.title}\n\n{doc.text}")
        assert all(p.startswith(prefix) for p in batch)  # the document comes first, whole
        assert len(os.path.commonprefix(batch)) >= len(prefix)
        assert all(p.index("</document>") < p.index("<chunk>") for p in batch)
        assert all("improving search retrieval" in p for p in batch)


def test_the_cache_skips_generation_and_survives_a_new_encoder(corpus, tmp_path: Path) -> None:
    chunks, docs = corpus
    path = tmp_path / "contexts.json"
    gen = CountingGenerator()
    first = ContextualEncoder(HashEncoder(), gen, cache=path)
    vectors = first.embed_chunks(chunks, documents=docs).situated
    assert gen.prompts == 5 and first.stats.generated == 5
    first.embed_chunks(chunks, documents=docs)
    assert gen.prompts == 5 and first.stats.cached == 5
    data = json.loads(path.read_text("utf-8"))
    assert data["format"] == "rag.contextual-cache" and len(data["entries"]) == 5
    again = CountingGenerator()
    second = ContextualEncoder(HashEncoder(), again, cache=path)
    np.testing.assert_array_equal(second.embed_chunks(chunks, documents=docs).situated, vectors)
    assert again.batches == [] and second.stats.cached == 5
    # another prompt setting is another key: it generates again
    third = ContextualEncoder(HashEncoder(), again, cache=path, max_new_tokens=8)
    third.embed_chunks(chunks, documents=docs)
    assert again.prompts == 5


def test_a_chunk_repeated_in_the_batch_is_generated_once(corpus) -> None:
    chunks, docs = corpus
    base, gen = RecordingEncoder(), CountingGenerator()
    ContextualEncoder(base, gen, cache=False).embed_chunks([*chunks, chunks[0]], documents=docs)
    assert gen.prompts == len(chunks) and base.seen[-1] == base.seen[0]


def test_a_changed_document_regenerates(corpus, tmp_path: Path) -> None:
    chunks, docs = corpus
    gen = CountingGenerator()
    enc = ContextualEncoder(HashEncoder(), gen, cache=tmp_path / "c.json")
    enc.embed_chunks(chunks, documents=docs)
    changed = make_doc("a", ALPHA + " A new sentence was added.", "Receptor X")
    new_chunks = sentence_chunks(changed)
    assert new_chunks[0].id == chunks[0].id  # same chunk, new document content hash
    gen.batches.clear()
    enc.embed_chunks(new_chunks[:1], documents={"a": changed})
    assert gen.prompts == 1 and "A new sentence was added." in gen.batches[0][0]
    enc.embed_chunks(chunks[3:], documents=docs)  # document b is unchanged: cached
    assert gen.prompts == 1


def test_a_failed_document_is_embedded_plain_and_the_rest_go_on(corpus, tmp_path: Path) -> None:
    chunks, docs = corpus
    base, gen = RecordingEncoder(), CountingGenerator(fail_on="Penguins eat krill")
    enc = ContextualEncoder(base, gen, cache=tmp_path / "c.json")
    with pytest.warns(RuntimeWarning, match="generation failed for 1 document"):
        enc.embed_chunks(chunks, documents=docs)
    assert base.seen[:3] == [f"About {c.text.split()[0]}.\n\n{c.text}" for c in chunks[:3]]
    assert base.seen[3:] == [c.text for c in chunks[3:]]  # document b: plain chunk text
    assert enc.stats.failed == 2 and enc.stats.generated == 3
    # failures are not cached: a working generator later fills in document b only
    healthy = CountingGenerator()
    ContextualEncoder(HashEncoder(), healthy, cache=tmp_path / "c.json").embed_chunks(
        chunks, documents=docs
    )
    assert healthy.prompts == 2 and all("Penguins" in p for p in healthy.batches[0])


def test_an_unexpected_error_stops_the_run_but_keeps_what_was_generated(
    corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks, docs = corpus
    gen = CountingGenerator()
    original = gen._generate_many

    def crash_on_b(prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        if any("Penguins eat krill" in str(p) for p in prompts):
            raise RuntimeError("out of memory")
        return original(prompts, options)

    monkeypatch.setattr(gen, "_generate_many", crash_on_b)
    with pytest.raises(RuntimeError, match="out of memory"):
        ContextualEncoder(HashEncoder(), gen, cache=tmp_path / "c.json").embed_chunks(
            chunks, documents=docs
        )
    assert len(ContextCache(tmp_path / "c.json")) == 3  # document a's contexts were saved


def test_an_empty_generation_falls_back_to_the_chunk_text(corpus) -> None:
    chunks, docs = corpus
    base = RecordingEncoder()
    enc = ContextualEncoder(base, CountingGenerator(answer="  "), cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty answer is not a failure
        enc.embed_chunks(chunks, documents=docs)
    assert base.seen == [c.text for c in chunks]


def test_without_documents_they_are_rebuilt_from_the_chunk_contexts(corpus) -> None:
    chunks, _ = corpus
    gen = CountingGenerator()
    enc = ContextualEncoder(HashEncoder(), gen, cache=False)
    enc.embed_chunks(chunks)
    assert [len(b) for b in gen.batches] == [3, 2]
    assert gen.batches[0][0].startswith(DOCUMENT_PROMPT.format(document=f"Receptor X\n\n{ALPHA}"))


def test_a_long_document_is_cut_into_shared_windows_around_the_chunks() -> None:
    words = [f"w{i}" for i in range(100)]
    spans, pos = [], 0
    for word in words:
        spans.append((pos, pos + len(word)))
        pos += len(word) + 1
    length = pos - 1
    window = aligned_window(spans, spans[50], 20, length)  # the window holding token 50
    assert window[0] <= spans[50][0] and spans[50][1] <= window[1]
    assert sum(1 for s, e in spans if window[0] <= s and e <= window[1]) == 20
    assert aligned_window(spans, spans[51], 20, length) == window  # a neighbour shares it
    assert aligned_window(spans, spans[2], 20, length)[0] == 0
    assert aligned_window(spans, spans[99], 20, length)[1] == length
    assert aligned_window(spans[:10], spans[5], 20, length) == (0, length)  # it all fits
    # through the encoder (tiktoken counts for a generator without a tokenizer)
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    doc = make_doc("long", text, "")
    chunks = sentence_chunks(doc)
    gen = CountingGenerator()
    enc = ContextualEncoder(HashEncoder(), gen, cache=False, max_document_tokens=120)
    enc.embed_chunks(chunks, documents={"long": doc})
    assert 2 < len(gen.batches) < len(chunks)  # grouped by window, not one call per chunk
    for batch in gen.batches:
        document = batch[0].split("</document>")[0]
        assert all(p.startswith(document) for p in batch)
        assert all(chunk_text_of(p) in document for p in batch)
        assert "[...]" in document and len(document) < len(text) / 2


def test_clean_context_keeps_the_first_paragraph_without_a_label() -> None:
    assert clean_context("Context: The study of mice.\n\nMore text.") == "The study of mice."
    assert clean_context('"Quoted context."') == "Quoted context."
    cut = clean_context("This chunk describes the receptor. It then goes on and", truncated=True)
    assert cut == "This chunk describes the receptor."


def test_registered_mode_and_the_lazy_default_generator(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    enc = get_situated("contextual", HashEncoder())
    assert isinstance(enc, ContextualEncoder) and SITUATED_MODES["contextual"] is ContextualEncoder
    assert enc.generator_name == "SmolLM2-135M-Instruct"
    assert getattr(enc.generator, "_folder", "x") is None  # nothing loaded yet
    assert enc.cache.path == tmp_path / "contextual" / "SmolLM2-135M-Instruct.json"
    assert enc.name == "hash+contextual"
    assert isinstance(ContextualEncoder(HashEncoder(), cache=False).cache, ContextCache)
    with pytest.raises(ValueError, match="at least 1"):
        ContextualEncoder(HashEncoder(), CountingGenerator(), max_new_tokens=0)


@pytest.fixture
def fake_contextual(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CountingGenerator:
    """``contextual`` built with a counting generator and a cache file under tmp_path, and the
    test-only ``hash`` encoder in the registry."""
    gen = CountingGenerator()
    register_hash_encoder(monkeypatch)
    monkeypatch.setitem(
        SITUATED_MODES,
        "contextual",
        lambda base: ContextualEncoder(base, gen, cache=tmp_path / "contexts.json"),
    )
    return gen


def test_rag_eval_runs_the_contextual_mode(tmp_path: Path, fake_contextual) -> None:
    from rag.cli import main

    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    corpus = [("a", "Receptor X", ALPHA), ("b", "Penguins", BETA)]
    lines = [json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in corpus]
    (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "krill"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tb\t1\n")
    out = tmp_path / "report.json"
    argv = ["eval", str(data), "--encoder", "hash", "--protocol", "chunked", "--chunk-tokens"]
    argv += ["8", "--situated", "plain", "--situated", "contextual", "--json", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    names = [r["name"] for r in json.loads(out.read_text())["runs"]]
    assert names == ["hash+plain", "hash+contextual"]
    generated = fake_contextual.prompts
    assert generated > 0
    assert main([*argv, "--no-progress"]) == 0  # a re-evaluation generates nothing
    assert fake_contextual.prompts == generated


def test_rag_ingest_accepts_contextual_and_a_reingest_generates_nothing(
    tmp_path: Path, fake_contextual
) -> None:
    from connectors.directory import load_directory
    from rag.cli import build_parser
    from rag.index import EncoderEntry, Index, IndexConfig

    args = build_parser().parse_args(["ingest", str(tmp_path), "--situated", "contextual"])
    assert args.situated == "contextual"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "alpha.txt").write_text(ALPHA)
    (folder / "beta.txt").write_text(BETA)
    config = IndexConfig(
        encoders=[EncoderEntry("hash", situated="contextual")],
        store="memory",
        chunker_options={"max_tokens": 12},
    )
    Index(tmp_path / "idx", config).ingest(load_directory(folder))
    generated = fake_contextual.prompts
    assert generated > 0
    Index(tmp_path / "idx2", config).ingest(load_directory(folder))  # a fresh index
    assert fake_contextual.prompts == generated
    hits = Index(tmp_path / "idx").retriever("hash").retrieve("penguins krill", k=1)
    assert hits[0].chunk.source.endswith("beta.txt")
