"""Situated encoders without models: context headers, the SitEmb text format and its truncation,
context segments, macro-windows, residual scoring, and the mode registry."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from rag.base import Encoder
from rag.chunking import get_chunker
from rag.encoders.situated import (
    SITEMB_INSTRUCTION,
    SITUATED_MODES,
    PrefixEncoder,
    context_segments,
    get_situated,
    header,
    prefix_text,
    residual_scores,
    residual_vectors,
    sitemb_text,
    situated_text,
)
from rag.encoders.situated.base import centred_window
from rag.encoders.situated.late import best_window, macro_windows, token_batches, token_span
from rag.types import Chunk, Document, Span, sha256_hex

ABSTRACT = (
    "Knockout mice lacking the receptor were studied. "
    "This effect was abolished in knockout mice. "
    "Wild-type mice showed the usual response to the drug. "
    "The receptor is therefore required for the response."
)


def make_doc(text: str = ABSTRACT, title: str = "Receptor X mediates drug response") -> Document:
    return Document(
        id="d1",
        text=text,
        source="d1.txt",
        content_hash=sha256_hex(text),
        title=title,
        spans=[Span(0, len(text))],
    )


def chunk_of(doc: Document, needle: str, **fields: object) -> Chunk:
    start = doc.text.index(needle)
    end = start + len(needle)
    return Chunk(
        id=Chunk.make_id(doc.id, start, end, needle),
        doc_id=doc.id,
        text=needle,
        start=start,
        end=end,
        title=doc.title,
        context=doc.text,
        context_start=0,
        context_end=len(doc.text),
        **fields,  # type: ignore[arg-type]
    )


class WordCounter(Encoder):
    """A deterministic encoder: a bag of hashed words. Records what it was asked to embed."""

    name = "words"
    dim = 16

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, sum(map(ord, word)) % self.dim] += 1.0
        out[:, 0] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def word_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        spans.append((start, start + len(word)))
        pos = start + len(word)
    return spans


# -- headers and the prefix mode ---------------------------------------------------------------------


def test_header_joins_title_and_section_path_without_repeating_the_title() -> None:
    doc = make_doc()
    chunk = chunk_of(doc, "This effect was abolished in knockout mice.")
    assert header(chunk) == "Receptor X mediates drug response"
    nested = chunk_of(doc, "This effect", section=("Receptor X mediates drug response", "Results"))
    assert header(nested) == "Receptor X mediates drug response > Results"
    untitled = chunk_of(make_doc(title=""), "This effect", section=("Methods",))
    assert header(untitled) == "Methods"


def test_prefix_text_puts_the_header_first_and_keeps_the_chunk_unchanged() -> None:
    doc = make_doc()
    chunk = chunk_of(doc, "This effect was abolished in knockout mice.")
    text = prefix_text(chunk, summary="A study of receptor X.")
    assert text == (
        "Receptor X mediates drug response\nA study of receptor X.\n\n"
        "This effect was abolished in knockout mice."
    )
    assert doc.text[chunk.start : chunk.end] == chunk.text  # offsets and display text untouched
    assert prefix_text(chunk_of(make_doc(title=""), "This effect")) == "This effect"


def test_prefix_encoder_calls_the_summary_callback_once_per_document() -> None:
    doc = make_doc()
    chunks = [chunk_of(doc, "Knockout mice lacking the receptor"), chunk_of(doc, "This effect")]
    calls: list[str] = []

    def summarize(d: Document) -> str:
        calls.append(d.id)
        return f"summary of {d.title} ({len(d.text)} chars)"

    base = WordCounter()
    enc = PrefixEncoder(base, summarize=summarize)
    enc.embed_chunks(chunks)
    enc.embed_chunks(chunks)
    assert calls == ["d1"]  # answers are kept by document id and content
    assert all(f"summary of {doc.title} ({len(doc.text)} chars)" in t for t in base.seen)
    # A summary the user supplied wins, and the callback is not asked.
    given = PrefixEncoder(WordCounter(), summaries={"d1": "given"}, summarize=summarize)
    assert all("\ngiven\n" in t for t in given.texts(chunks))
    assert calls == ["d1"]


def test_prefix_embeds_differ_from_plain_and_queries_use_the_base_encoder() -> None:
    doc = make_doc()
    chunk = chunk_of(doc, "This effect was abolished in knockout mice.")
    base = WordCounter()
    prefix = get_situated("prefix", base).embed_chunks([chunk], chunk_vectors=True)
    plain = get_situated("plain", base).embed_chunks([chunk])
    assert prefix.chunk is not None
    np.testing.assert_allclose(prefix.chunk, plain.situated)
    assert not np.allclose(prefix.situated, plain.situated)
    query = get_situated("prefix", base).embed_query("receptor drug response")
    np.testing.assert_allclose(query, base.embed_query("receptor drug response"))


# -- the SitEmb text format ------------------------------------------------------------------------


def test_sitemb_text_is_chunk_then_instruction_then_context() -> None:
    doc = make_doc()
    chunk = chunk_of(doc, "This effect was abolished in knockout mice.")
    text = sitemb_text(chunk)
    assert text == (
        f"{chunk.text}\n{SITEMB_INSTRUCTION}\nReceptor X mediates drug response\n{ABSTRACT}"
    )


def test_sitemb_truncation_keeps_the_chunk_whole_and_the_context_around_it() -> None:
    words = [f"w{i}" for i in range(400)]
    text = " ".join(words)
    doc = make_doc(text=text, title="T")
    needle = " ".join(words[200:210])
    chunk = chunk_of(doc, needle)
    out = sitemb_text(chunk, window=60, token_spans=word_spans)
    head, instruction, context = out.split("\n", 2)
    assert head == needle and instruction == SITEMB_INSTRUCTION
    assert context.startswith("T\n")
    kept = context.split("\n", 1)[1].split()
    assert needle in " ".join(kept)  # the chunk's own place in the context survives
    assert len(word_spans(out)) <= 60
    centre = kept.index("w200") + 5
    assert abs(centre - len(kept) / 2) <= 1  # centred on the chunk
    # A window too small for any context still keeps the chunk whole.
    tiny = sitemb_text(chunk, window=5, token_spans=word_spans)
    assert tiny.startswith(needle)


def test_sitemb_context_of_a_single_sentence_record_is_its_title() -> None:
    doc = make_doc(text="Sea levels rose by 20 cm.", title="Sea level rise")
    chunk = chunk_of(doc, "Sea levels rose by 20 cm.")
    assert sitemb_text(chunk) == f"Sea levels rose by 20 cm.\n{SITEMB_INSTRUCTION}\nSea level rise"
    no_title = chunk_of(make_doc(text="Alone.", title=""), "Alone.")
    assert sitemb_text(no_title) == "Alone."


def test_centred_window_gives_unused_room_to_the_other_side() -> None:
    text = " ".join(f"t{i}" for i in range(20))
    spans = word_spans(text)
    focus = (spans[1][0], spans[1][1])  # near the start: little room on the left
    start, end = centred_window(text, focus, 6, word_spans)
    assert text[start:end].split() == [f"t{i}" for i in range(6)]
    focus = (spans[10][0], spans[11][1])
    start, end = centred_window(text, focus, 6, word_spans)
    assert text[start:end].split() == [f"t{i}" for i in range(8, 14)]
    assert centred_window(text, focus, 100, word_spans) == (0, len(text))


# -- context segments (what late chunking encodes) ----------------------------------------------


def test_context_segments_merge_each_documents_overlapping_contexts() -> None:
    sections = [" ".join(f"s{s}w{w}." for w in range(60)) for s in range(3)]
    text = "\n\n".join(sections)
    spans, pos = [], 0
    for i, section in enumerate(sections):  # three sections of 60 short sentences
        spans.append(Span(pos, pos + len(section), (f"S{i}",)))
        pos += len(section) + 2
    doc = Document("doc", text, "doc.txt", sha256_hex(text), title="Title", spans=spans)
    chunks = get_chunker("sentence", max_tokens=16, context_tokens=48).chunk(doc)
    segments = context_segments(chunks)
    owned = sorted(i for s in segments for i in s.chunks)
    assert owned == list(range(len(chunks)))  # every chunk in exactly one segment
    for seg in segments:
        assert text[seg.start : seg.end] == seg.text
        for i in seg.chunks:
            c = chunks[i]
            assert seg.start <= c.context_start and c.context_end <= seg.end
    # section contexts never cross a section, so each section gives its own segment(s)
    assert {chunks[s.chunks[0]].section for s in segments} == {("S0",), ("S1",), ("S2",)}


def test_context_segments_keep_documents_apart() -> None:
    a, b = make_doc(), make_doc()
    b = Document("d2", b.text, "d2.txt", b.content_hash, title="Other")
    ca = chunk_of(a, "This effect")
    cb = Chunk(**{**ca.__dict__, "doc_id": "d2", "id": "x"})
    segments = context_segments([ca, cb])
    assert [(s.doc_id, s.chunks) for s in segments] == [("d1", (0,)), ("d2", (1,))]


# -- macro-windows ------------------------------------------------------------------------------------


def test_macro_windows_cover_the_text_with_the_given_overlap() -> None:
    assert macro_windows(100, 512, 128) == [(0, 100)]
    windows = macro_windows(1000, 400, 100)
    assert windows[0] == (0, 400) and windows[-1][1] == 1000
    assert all(b - a == 400 for a, b in windows)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end - start >= 100  # consecutive windows share at least the overlap
    with pytest.raises(ValueError):
        macro_windows(10, 0, 0)


def test_best_window_prefers_the_most_central_whole_placement() -> None:
    windows = [(0, 400), (300, 700), (600, 1000)]
    assert best_window(windows, 350, 380) == 1  # whole in 0 and 1, more central in 1
    assert best_window(windows, 10, 20) == 0
    assert best_window(windows, 690, 710) == 2


def test_token_batches_pack_short_windows_into_the_budget() -> None:
    # budget 8 windows x 512 tokens: forty 40-token windows share one pass, long ones go 8 a pass
    lengths = [40] * 40 + [512] * 10
    batches = token_batches(lengths, 8 * 512)
    assert batches[0] == list(range(40))
    assert [len(b) for b in batches[1:]] == [8, 2]
    assert token_batches([5000], 4096) == [[0]]  # an item over the budget still gets a pass


def test_token_span_maps_characters_to_tokens() -> None:
    offsets = [(0, 3), (4, 9), (9, 10), (11, 15)]
    assert token_span(offsets, 4, 10) == (1, 3)
    assert token_span(offsets, 0, 15) == (0, 4)
    assert token_span(offsets, 10, 11) == (3, 4)  # only whitespace: the next token


# -- residual scoring ---------------------------------------------------------------------------------


def test_residual_scores_by_hand() -> None:
    s = np.array([[0.5, 0.2, 0.9]])
    c = np.array([[0.1, 0.8, 0.0]])
    np.testing.assert_allclose(residual_scores(s, c, 0.5), [[0.55, 0.6, 0.9]], rtol=1e-6)
    np.testing.assert_allclose(residual_scores(s, c, 0.0), s, rtol=1e-6)
    with pytest.raises(ValueError):
        residual_scores(s, c[:, :2], 0.5)
    with pytest.raises(ValueError):
        residual_scores(s, c, -1.0)


def test_residual_vectors_score_like_residual_scores() -> None:
    rng = np.random.default_rng(0)
    s, c, q = (rng.normal(size=(n, 8)).astype(np.float32) for n in (5, 5, 3))
    combined = residual_vectors(s, c, 0.25)
    np.testing.assert_allclose(q @ combined.T, residual_scores(q @ s.T, q @ c.T, 0.25), atol=1e-5)


def test_residual_ranking_keeps_a_chunk_that_only_matches_alone() -> None:
    """Context can drown a chunk's own match; the residual term brings it back."""
    q = np.array([1.0, 0.0, 0.0])
    situated = np.array([[0.30, 0.95, 0.0], [0.45, 0.0, 0.89]])  # context pulled chunk 0 away
    chunk = np.array([[0.99, 0.1, 0.0], [0.2, 0.0, 0.98]])
    assert np.argmax(situated @ q) == 1
    assert np.argmax(residual_scores(situated @ q, chunk @ q, 0.5)) == 0


# -- registry --------------------------------------------------------------------------------------


def test_get_situated_names_the_valid_modes() -> None:
    assert list(SITUATED_MODES)[:4] == ["plain", "prefix", "sitemb", "late"]
    assert "contextual" in SITUATED_MODES
    with pytest.raises(ValueError, match="plain, prefix, sitemb, late"):
        get_situated("no-such-mode", WordCounter())


def test_late_chunking_needs_token_outputs() -> None:
    with pytest.raises(ValueError, match="token-level outputs"):
        get_situated("late", WordCounter())


def test_situated_text_for_text_modes() -> None:
    chunk = chunk_of(make_doc(), "This effect was abolished in knockout mice.")
    assert situated_text(chunk, "plain") == chunk.text
    assert situated_text(chunk, "prefix") == prefix_text(chunk)
    assert situated_text(chunk, "sitemb").startswith(chunk.text + "\n" + SITEMB_INSTRUCTION)
    with pytest.raises(ValueError, match="embed_chunks"):
        situated_text(chunk, "late")


def test_situated_vectors_are_unit_float32_rows() -> None:
    doc = make_doc()
    chunks = [chunk_of(doc, "This effect"), chunk_of(doc, "Wild-type mice")]
    for mode in ("plain", "prefix", "sitemb"):
        vectors = get_situated(mode, WordCounter()).embed_chunks(chunks)
        assert vectors.situated.dtype == np.float32 and vectors.situated.shape == (2, 16)
        np.testing.assert_allclose(np.linalg.norm(vectors.situated, axis=1), 1.0, rtol=1e-5)
        if mode == "plain":  # its vectors are the chunk vectors: one pass, both fields
            assert vectors.chunk is vectors.situated
        else:
            assert vectors.chunk is None  # no second pass unless asked
    empty = get_situated("sitemb", WordCounter()).embed_chunks([])
    assert empty.situated.shape == (0, 16)
