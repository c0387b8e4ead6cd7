"""The LlamaIndex building blocks, offline: a reader over our connectors, a NodeParser over our
chunkers (exact offsets, sections, context spans), a BaseEmbedding over our encoders (situated
modes on nodes), an LLM over our generators, and query engines running end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, Settings, VectorStoreIndex  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import MetadataMode  # noqa: E402

from rag.adapters.llamaindex_embedding import RagEmbedding  # noqa: E402
from rag.adapters.llamaindex_llm import RagLLM  # noqa: E402
from rag.adapters.llamaindex_parser import RagNodeParser, node_chunk  # noqa: E402
from rag.adapters.llamaindex_reader import RagReader, ReadError  # noqa: E402
from rag.encoders.bm25 import BM25Encoder  # noqa: E402
from rag.encoders.situated import prefix_text  # noqa: E402
from rag.generation import EchoGenerator  # noqa: E402
from tests.adapter_corpus import PDF_OUTLINE, PDF_PAGES, TEXTS  # noqa: E402
from tests.fakes import HashEncoder  # noqa: E402
from tests.fixtures_docs import make_pdf  # noqa: E402

HIDDEN = ("context", "context_start", "context_end", "rag_spans", "doc_id", "content_hash")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("li-docs")
    for name, text in TEXTS.items():
        (docs / name).write_text(text, "utf-8")
    (docs / "coast.pdf").write_bytes(make_pdf(PDF_PAGES, outline=PDF_OUTLINE))
    return docs


@pytest.fixture(scope="module")
def documents(folder: Path) -> list[Document]:
    return RagReader().load_data(folder)


@pytest.fixture
def settings_untouched():
    """Every LlamaIndex object gets its model explicitly: the global Settings never change."""
    before = (Settings._llm, Settings._embed_model)
    yield
    assert (Settings._llm, Settings._embed_model) == before


def keys_of(view: str) -> set[str]:
    return {line.split(": ", 1)[0] for line in view.splitlines() if ": " in line}


def test_reader_reads_markdown_and_text_and_reports_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nBees dance.\n", "utf-8")
    (tmp_path / "plain.txt").write_text("Green tea is steamed.\n", "utf-8")
    (tmp_path / "broken.md").write_bytes(b"# Broken\x00\x00\x00 binary")
    reader = RagReader()
    docs = reader.load_data(tmp_path)
    assert [d.metadata["file_name"] for d in docs] == ["notes.md", "plain.txt"]
    assert [d.metadata["title"] for d in docs] == ["Notes", "plain"]
    for doc in docs:
        assert doc.metadata["source"] == str(tmp_path / doc.metadata["file_name"])
        assert None not in doc.metadata.values() and "page" not in doc.metadata
        assert all(isinstance(v, str | int | float | bool) for v in doc.metadata.values())
        assert not keys_of(doc.get_metadata_str(MetadataMode.LLM)) & set(HIDDEN)
    assert [(Path(e.path).name, e.reason) for e in reader.errors] == [
        ("broken.md", "binary file (contains NUL bytes)")
    ]
    assert reader.load_data(tmp_path / "plain.txt")[0].text == "Green tea is steamed.\n"
    assert reader.errors == []  # reset per call
    assert reader.load_data(tmp_path / "missing") == [] and len(reader.errors) == 1
    with pytest.raises(ReadError, match="broken.md"):
        RagReader(raise_errors=True).load_data(tmp_path)


def test_reader_gives_one_document_per_pdf_page(folder: Path, documents: list[Document]) -> None:
    pages = [d for d in documents if d.metadata["file_name"] == "coast.pdf"]
    assert [(d.metadata["page"], d.metadata["page_label"]) for d in pages] == [
        (0, "1"),
        (1, "2"),
        (2, "3"),
    ]
    assert pages[2].text.startswith("Glaciers carve")
    assert len({d.id_ for d in documents}) == len(documents)
    whole = RagReader(split="file").load_data(folder / "coast.pdf")
    assert len(whole) == 1 and "page" not in whole[0].metadata


def test_parser_nodes_have_exact_offsets_sections_and_context(documents: list[Document]) -> None:
    nodes = RagNodeParser(max_tokens=16, context_tokens=32).get_nodes_from_documents(documents)
    by_id = {d.id_: d for d in documents}
    assert {n.ref_doc_id for n in nodes} == set(by_id)
    for node in nodes:
        doc = by_id[node.ref_doc_id]
        meta = node.metadata
        assert doc.text[node.start_char_idx : node.end_char_idx] == node.text
        assert doc.text[meta["context_start"] : meta["context_end"]] == meta["context"]
        assert meta["context_start"] <= node.start_char_idx < node.end_char_idx
        assert None not in meta.values() and "rag_spans" not in meta
        llm = keys_of(node.get_metadata_str(MetadataMode.LLM))
        assert "source" in llm and not llm & set(HIDDEN)
        assert keys_of(node.get_metadata_str(MetadataMode.EMBED)) <= {"title", "section"}
    ash = next(n for n in nodes if "jet engines" in n.text)
    assert ash.metadata["section"] == "Volcanoes > Ash"
    glacier = next(n for n in nodes if "Glaciers" in n.text)
    assert (glacier.metadata["section"], glacier.metadata["page_label"]) == ("Ice", "3")
    again = RagNodeParser(max_tokens=16, context_tokens=32).get_nodes_from_documents(documents)
    assert [n.node_id for n in again] == [n.node_id for n in nodes]  # content-derived ids


def test_parser_keeps_offsets_of_repeated_text_and_reads_markdown_headings() -> None:
    text = "# Intro\n\nGamma one. Alpha beta.\n\nAlpha beta.\n"
    doc = Document(text=text, metadata={"file_name": "rep.md"})  # not from our reader
    nodes = RagNodeParser(max_tokens=8, chunker="recursive").get_nodes_from_documents([doc])
    assert [n.text for n in nodes][-1] == "Alpha beta."
    for node in nodes:
        assert text[node.start_char_idx : node.end_char_idx] == node.text
        assert node.metadata["section"] == "Intro" and node.ref_doc_id == doc.id_
    assert nodes[-1].start_char_idx == text.rindex("Alpha beta.")  # str.find would say 20
    plain = RagNodeParser().get_nodes_from_documents([Document(text="# Not a heading here")])
    assert "section" not in plain[0].metadata  # not a Markdown file: no headings read
    with pytest.raises(ValueError, match="unknown chunker"):
        RagNodeParser(chunker="nope")


def test_embedding_matches_the_encoder_for_queries_and_texts() -> None:
    encoder = HashEncoder()
    embed = RagEmbedding(encoder, embed_batch_size=2)
    assert embed.dim == 512 and embed.model_name == "hash"
    query = embed.get_query_embedding("honey bees")
    assert len(query) == 512
    assert np.allclose(query, encoder.embed_queries(["honey bees"])[0])
    texts = ["bees dance", "tea is steamed", "ash melts"]
    assert np.allclose(embed.get_text_embedding(texts[0]), encoder.embed_documents(texts[:1])[0])
    assert np.allclose(embed.get_text_embedding_batch(texts), encoder.embed_documents(texts))
    assert np.allclose(asyncio.run(embed.aget_query_embedding("honey bees")), query)
    assert np.allclose(
        asyncio.run(embed.aget_text_embedding_batch(texts)), embed._get_text_embeddings(texts)
    )
    with pytest.raises(ValueError, match="lexical"):
        RagEmbedding(BM25Encoder())
    with pytest.raises(TypeError, match="situated mode"):
        RagEmbedding(encoder, window=3)


def test_situated_prefix_embeds_nodes_in_their_context(documents: list[Document]) -> None:
    encoder = HashEncoder()
    nodes = RagNodeParser(max_tokens=16).get_nodes_from_documents(documents)
    situated = RagEmbedding(encoder, situated="prefix")
    situated(nodes)
    ash = next(n for n in nodes if "jet engines" in n.text)
    expected = encoder.embed_documents([prefix_text(node_chunk(ash))])[0]
    assert prefix_text(node_chunk(ash)).startswith("Volcanoes > Ash\n\n## Ash")
    assert np.allclose(ash.embedding, expected)
    assert not np.allclose(ash.embedding, encoder.embed_documents([ash.text])[0])
    sitemb = RagEmbedding(encoder, situated="sitemb").embed_nodes([ash])[0]
    assert len(sitemb) == 512 and not np.allclose(sitemb, ash.embedding)
    plain = asyncio.run(RagEmbedding(encoder).acall([ash.model_copy()]))[0]
    view = ash.get_content(metadata_mode=MetadataMode.EMBED)
    assert np.allclose(plain.embedding, encoder.embed_documents([view])[0])


@pytest.mark.usefixtures("settings_untouched")
def test_vector_store_index_answers_with_mock_llm(documents: list[Document]) -> None:
    embed = RagEmbedding(HashEncoder(), situated="prefix")
    nodes = embed(RagNodeParser(max_tokens=32).get_nodes_from_documents(documents))
    index = VectorStoreIndex(nodes, embed_model=embed)
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=2)
    response = engine.query("why do honey bees dance?")
    assert response.response == " ".join(["text"] * 8)
    top = response.source_nodes[0].node
    assert top.metadata["source"].endswith("bees.md")
    assert (
        Path(top.metadata["source"]).read_text("utf-8")[top.start_char_idx : top.end_char_idx]
        == top.get_content()
    )
    top_one = RetrieverQueryEngine.from_args(
        index.as_retriever(similarity_top_k=1), llm=MockLLM(max_tokens=4)
    )
    assert top_one.query("green tea oxidation").source_nodes[0].node.metadata["title"] == "tea"


@pytest.mark.usefixtures("settings_untouched")
def test_query_engine_runs_on_a_project_generator(documents: list[Document]) -> None:
    """The echo generator (it answers with its prompt) through RagLLM: what the LLM reads."""
    embed = RagEmbedding(HashEncoder())
    index = VectorStoreIndex(RagNodeParser().get_nodes_from_documents(documents), embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=1)
    echo = RetrieverQueryEngine.from_args(retriever, llm=RagLLM(EchoGenerator()))
    answer = echo.query("why does volcanic ash ground aircraft?")
    assert "melts inside jet engines" in answer.response
    assert "context_start" not in answer.response and "section: Volcanoes > Ash" in answer.response
    assert answer.source_nodes[0].node.metadata["section"] == "Volcanoes > Ash"


@pytest.mark.slow
@pytest.mark.usefixtures("settings_untouched")
def test_query_engine_runs_on_the_local_generator(
    documents: list[Document], tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    from rag.generation import TransformersGenerator
    from rag.generation.testing import make_tiny_causal_lm

    generator = TransformersGenerator(make_tiny_causal_lm(tmp_path / "lm"))
    llm = RagLLM(generator, max_new_tokens=6, context_window=1024)
    index = VectorStoreIndex(
        RagNodeParser(max_tokens=32).get_nodes_from_documents(documents),
        embed_model=RagEmbedding(HashEncoder()),
    )
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    response = engine.query("what is the capital of france ?")
    assert isinstance(response.response, str)
    assert len(response.source_nodes) == 2
    direct = llm.complete("what is the capital of france ?")
    assert (
        direct.text == generator.generate("what is the capital of france ?", max_new_tokens=6).text
    )
    assert "".join(r.delta or "" for r in llm.stream_complete("rivers flow to the sea")) == (
        llm.complete("rivers flow to the sea").text
    )
    assert direct.raw["generation"].steps  # the per-token distributions come along
