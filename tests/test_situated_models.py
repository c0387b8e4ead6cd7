"""Situated encoders on real (tiny, randomly initialised, saved locally) models: late chunking on
a BERT sentence-transformers folder, and SitEmb's causal two-vector pass on a Qwen3 model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import get_chunker
from rag.encoders.situated import SITEMB_INSTRUCTION, get_situated
from rag.types import Chunk, Document, Span, sha256_hex

if importlib.util.find_spec("sentence_transformers") is None:
    pytest.skip("sentence-transformers is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow  # builds and runs two small torch models (~10 s unloaded)

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "it",
    "this",
    "mice",
    "receptor",
    "effect",
    "drug",
    "response",
    "knockout",
    "abolished",
    "study",
    "cell",
    "gene",
    "protein",
    "risk",
    "vitamin",
    "sea",
    "level",
    "rose",
    "climate",
    "warming",
    "ice",
    "sheet",
    "title",
    "results",
    "methods",
    "query",
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT (96 positions) saved as a sentence-transformers folder with mean
    pooling and normalisation, as all-MiniLM-L6-v2 is."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("situated_bert")
    hf = root / "hf"
    hf.mkdir()
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, ".", ",", ">", "-"]
    vocab += [f"##{c}" for c in letters]
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=96,
    )
    BertModel(config).save_pretrained(hf)
    BertTokenizer.from_pretrained(str(hf), model_max_length=96).save_pretrained(hf)
    st = SentenceTransformer(
        modules=[Transformer(str(hf), max_seq_length=96), Pooling(32, "mean"), Normalize()],
        device="cpu",
    )
    st.save(str(root / "st"))
    return root / "st"


@pytest.fixture(scope="module")
def bert_encoder(tiny_bert: Path):  # noqa: ANN201
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(tiny_bert, name="tiny")


def document(doc_id: str, text: str, title: str = "Study of mice") -> Document:
    return Document(doc_id, text, f"{doc_id}.txt", sha256_hex(text), title, [Span(0, len(text))])


def sentence_chunks(doc: Document, max_tokens: int = 12, context_tokens: int = 512) -> list[Chunk]:
    return get_chunker("sentence", max_tokens=max_tokens, context_tokens=context_tokens).chunk(doc)


SHORT = "Knockout mice lacking the receptor. This effect was abolished in knockout mice."


# -- late chunking -------------------------------------------------------------------------------------


def test_late_pools_each_chunk_from_its_own_tokens(bert_encoder) -> None:  # noqa: ANN001
    late = get_situated("late", bert_encoder)
    chunks = sentence_chunks(document("d", SHORT))
    jobs = late.jobs(chunks)
    assert len(jobs) == 1  # a short document: one forward pass for all its chunks
    tokenizer = bert_encoder.tokenizer
    pooled = {index: (first, end) for index, first, end in jobs[0].spans}
    assert sorted(pooled) == list(range(len(chunks)))
    for index, (first, end) in pooled.items():
        text = tokenizer.decode(list(jobs[0].input_ids[first:end]))
        assert text.replace(" ", "") == chunks[index].text.lower().replace(" ", "")
    # the header is read before the text: [CLS] title \n text [SEP]
    head = tokenizer.decode(list(jobs[0].input_ids[1:4]))
    assert head.startswith("study of mice")


def test_late_vectors_depend_on_context_and_plain_ones_do_not(bert_encoder) -> None:  # noqa: ANN001
    a = document("a", "The drug response of mice. This effect was abolished in knockout mice.")
    b = document("b", "Sea level rose with warming. This effect was abolished in knockout mice.")
    chunk_a = sentence_chunks(a)[-1]
    chunk_b = sentence_chunks(b)[-1]
    assert chunk_a.text == chunk_b.text
    late = get_situated("late", bert_encoder).embed_chunks([chunk_a, chunk_b])
    plain = get_situated("plain", bert_encoder).embed_chunks([chunk_a, chunk_b])
    np.testing.assert_allclose(plain.situated[0], plain.situated[1], atol=1e-6)
    # (a random tiny model mixes context in weakly, but it does mix it in)
    assert np.abs(late.situated[0] - late.situated[1]).max() > 1e-4
    np.testing.assert_allclose(np.linalg.norm(late.situated, axis=1), 1.0, rtol=1e-5)


def test_late_vectors_do_not_depend_on_batching(bert_encoder) -> None:  # noqa: ANN001
    docs = [
        document("a", SHORT),
        document("b", "Sea level rose. " * 3 + "The ice sheet study was abolished."),
        document("c", "Vitamin risk. " * 2),
    ]
    chunks = [c for d in docs for c in sentence_chunks(d)]
    one = get_situated("late", bert_encoder, window_batch_size=1).embed_chunks(chunks)
    many = get_situated("late", bert_encoder, window_batch_size=8).embed_chunks(chunks)
    np.testing.assert_allclose(one.situated, many.situated, atol=1e-5)


def test_long_documents_use_overlapping_macro_windows(bert_encoder) -> None:  # noqa: ANN001
    sentences = [f"the study {w} was abolished in mice {i}." for i, w in enumerate(WORDS)]
    doc = document("long", " ".join(sentences))
    chunks = sentence_chunks(doc, max_tokens=10)
    late = get_situated("late", bert_encoder, window_tokens=64, overlap_tokens=16)
    jobs = late.jobs(chunks)
    assert len(jobs) > 3
    assert all(len(j.input_ids) <= 64 for j in jobs)
    pooled = sorted(i for j in jobs for i, _, _ in j.spans)
    assert pooled == list(range(len(chunks)))  # each chunk pooled once, from one window
    for job in jobs:
        for index, first, end in job.spans:
            text = bert_encoder.tokenizer.decode(list(job.input_ids[first:end]))
            assert text.replace(" ", "") == chunks[index].text.lower().replace(" ", "")
    vectors = late.embed_chunks(chunks, chunk_vectors=True)
    assert vectors.situated.shape == vectors.chunk.shape == (len(chunks), 32)
    plain = get_situated("plain", bert_encoder).embed_chunks(chunks)
    np.testing.assert_allclose(vectors.chunk, plain.situated, atol=1e-6)


def test_window_vector_is_the_window_read_as_one_text(bert_encoder) -> None:  # noqa: ANN001
    docs = [document("a", SHORT), document("b", "Sea level rose. " * 3 + "The ice sheet melted.")]
    chunks = [c for d in docs for c in sentence_chunks(d)]
    late = get_situated("late", bert_encoder)
    spans, windows = late.late_parts(chunks)
    np.testing.assert_allclose(spans, late.embed_chunks(chunks).situated, atol=1e-6)
    # every chunk of a document shares its window's vector: the model's own pooling of the
    # header and the text, as embedding "title\ntext" would give
    for doc in docs:
        rows = [i for i, c in enumerate(chunks) if c.doc_id == doc.id]
        np.testing.assert_allclose(windows[rows], windows[rows[:1]].repeat(len(rows), 0), atol=1e-6)
        whole = bert_encoder.embed_documents([f"{doc.title}\n{doc.text}"])[0]
        assert float(windows[rows[0]] @ whole) > 0.999
    mixed = get_situated("late", bert_encoder, context_weight=0.5)
    expected = spans + 0.5 * windows
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(mixed.embed_chunks(chunks).situated, expected, atol=1e-6)
    assert mixed.options()["context_weight"] == 0.5 and "context_weight" not in late.options()
    with pytest.raises(ValueError, match="context_weight"):
        get_situated("late", bert_encoder, context_weight=-1)


def test_sitemb_text_mode_fits_the_models_window(bert_encoder) -> None:  # noqa: ANN001
    long = " ".join(f"the study {w} was abolished in mice." for w in WORDS)
    chunks = sentence_chunks(document("long", long), max_tokens=10)
    sitemb = get_situated("sitemb", bert_encoder)
    assert sitemb.window == 96
    for chunk, text in zip(chunks, sitemb.texts(chunks), strict=True):
        assert text.startswith(chunk.text + "\n" + SITEMB_INSTRUCTION)
        n_tokens = len(bert_encoder.tokenizer(text)["input_ids"])
        assert n_tokens <= 96


# -- SitEmb's causal models -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Qwen3 model and a word-level tokenizer with ``<|endoftext|>``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    root = tmp_path_factory.mktemp("situated_qwen3")
    words = [*WORDS, *SITEMB_INSTRUCTION.lower().replace(".", " .").split(), "instruct", "query"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(["[UNK]", *words, ".", ",", ":", ">"]))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=128,
    )
    fast.save_pretrained(root)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    )
    Qwen3Model(config).save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def causal_model(tiny_causal: Path):  # noqa: ANN201
    from rag.encoders.situated import CausalSitEmbModel

    return CausalSitEmbModel(tiny_causal, task="find the study")


def test_one_pass_gives_the_chunk_vector_and_the_situated_vector(causal_model) -> None:  # noqa: ANN001
    from rag.encoders.situated import CausalSitEmbEncoder

    a = document("a", "The drug response of mice. This effect was abolished in knockout mice.")
    b = document("b", "Sea level rose with warming. This effect was abolished in knockout mice.")
    chunk_a, chunk_b = sentence_chunks(a)[-1], sentence_chunks(b)[-1]
    situated = get_situated("sitemb", causal_model)
    assert isinstance(situated, CausalSitEmbEncoder)
    vectors = situated.embed_chunks([chunk_a, chunk_b])  # chunk vectors come for free
    assert vectors.chunk is not None
    # Causal attention: the state at the first <end> has seen only the chunk, so it equals
    # the chunk embedded alone, and is the same whatever context follows.
    alone = causal_model.embed_documents([chunk_a.text])
    np.testing.assert_allclose(vectors.chunk[0], alone[0], atol=1e-5)
    np.testing.assert_allclose(vectors.chunk[0], vectors.chunk[1], atol=1e-5)
    assert np.abs(vectors.situated[0] - vectors.situated[1]).max() > 1e-4
    # The situated vector is the last state of the whole sequence.
    ids, first_end = causal_model.pair_ids(chunk_a)
    assert ids[first_end] == ids[-1] == causal_model.end_id
    state = causal_model.states_at([ids], [[len(ids) - 1]], batch_size=1)[0][0]
    np.testing.assert_allclose(vectors.situated[0], state / np.linalg.norm(state), atol=1e-5)


def test_causal_pairs_keep_the_chunk_whole_within_max_length(tiny_causal: Path) -> None:
    from rag.encoders.situated import CausalSitEmbModel

    model = CausalSitEmbModel(tiny_causal, max_length=40)
    long = " ".join(f"the study {w} was abolished in mice." for w in WORDS)
    chunks = sentence_chunks(document("long", long), max_tokens=10)
    for chunk in chunks:
        ids, first_end = model.pair_ids(chunk)
        assert len(ids) <= 40
        assert ids[:first_end] == model.ids(chunk.text)  # the chunk, whole, first
        instruction = model.ids(SITEMB_INSTRUCTION + "\n")
        assert ids[first_end + 1 : first_end + 1 + len(instruction)] == instruction


def test_causal_queries_use_the_instruct_format_and_batching_is_exact(causal_model) -> None:  # noqa: ANN001
    q = causal_model.embed_queries(["mice drug response"])
    as_doc = causal_model.embed_documents(["Instruct: find the study\nQuery: mice drug response"])
    np.testing.assert_allclose(q, as_doc, atol=1e-6)
    texts = ["mice", "the drug response of knockout mice was abolished", "sea level rose"]
    one = causal_model.embed_documents(texts, batch_size=1)
    many = causal_model.embed_documents(texts, batch_size=3)
    np.testing.assert_allclose(one, many, atol=1e-5)  # right padding never leaks backwards


def test_residual_scoring_on_the_causal_vectors(causal_model) -> None:  # noqa: ANN001
    from rag.encoders.situated import residual_scores, residual_vectors

    chunks = sentence_chunks(document("a", SHORT))
    vectors = get_situated("sitemb", causal_model).embed_chunks(chunks)
    q = causal_model.embed_queries(["knockout mice"])
    combined = residual_vectors(vectors.situated, vectors.chunk, 0.5)
    expected = residual_scores(q @ vectors.situated.T, q @ vectors.chunk.T, 0.5)
    np.testing.assert_allclose(q @ combined.T, expected, atol=1e-6)


@pytest.mark.gpu
def test_causal_two_vector_pass_on_cuda_in_bfloat16(tiny_causal: Path, causal_model) -> None:  # noqa: ANN001
    import torch

    from rag.encoders.situated import CausalSitEmbModel

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    gpu = CausalSitEmbModel(tiny_causal, task="find the study", device="cuda", dtype="auto")
    assert next(gpu.model.parameters()).dtype == torch.bfloat16
    chunks = sentence_chunks(document("a", SHORT))
    on_gpu = get_situated("sitemb", gpu).embed_chunks(chunks, batch_size=2)
    on_cpu = get_situated("sitemb", causal_model).embed_chunks(chunks)
    for got, want in ((on_gpu.situated, on_cpu.situated), (on_gpu.chunk, on_cpu.chunk)):
        assert got.dtype == np.float32
        assert np.min(np.sum(got * want, axis=1)) > 0.99  # bf16 rounding only
    alone = gpu.embed_documents([c.text for c in chunks])
    assert np.min(np.sum(on_gpu.chunk * alone, axis=1)) > 0.999
