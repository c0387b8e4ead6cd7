"""Filters (``where=``): parsing, matching, every store kind, fusion and the CLI; k hits back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import HashEncoder, register_hash_encoder

from rag.encoders.bm25 import BM25Encoder
from rag.index import EncoderEntry, Index, IndexConfig
from rag.retrieval.filters import FilterError, Where, file_type, resolve_where
from rag.retrieval.multi import FusionRetriever
from rag.retrieval.store_retriever import StoreRetriever
from rag.stores._filters import chroma_where, fully_pushed
from rag.types import Chunk, Document, Span, sha256_hex

QUERY = "apt package archive update"


def chunk(i: int, source: str, text: str, page: int | None = None, section=()) -> Chunk:
    return Chunk(
        id=f"c{i:03d}", doc_id=source, text=text, start=0, end=len(text), source=source,
        section=tuple(section), page=page, context=text, context_end=len(text),
    )  # fmt: skip


def unique(i: int) -> str:
    """Words no other chunk has (so that no two chunks are near-duplicates)."""
    return " ".join(f"w{i}{x}" for x in "abcd")


def corpus() -> list[Chunk]:
    """60 chunks, one per file: 52 strong matches in html/md files, 8 weak ones in PDFs."""
    out = []
    for i in range(52):
        src = f"/data/docs/ch{i}.html" if i % 2 else f"/data/notes/n{i}.md"
        text = f"apt package archive update {unique(i)}"
        out.append(chunk(i, src, text, section=("Install",)))
    for i in range(52, 60):
        text = f"apt on page {i - 50} beside {unique(i)}"
        out.append(
            chunk(
                i, f"/data/pdf/manual{i}.pdf", text, page=i - 50, section=("Chapter 2", "2.1 Apt")
            )
        )
    return out


def matching(where: Where, chunks: list[Chunk]) -> set[str]:
    return {c.id for c in chunks if where.matches(c)}


# -- the Where type ------------------------------------------------------------------------------


def test_parse_and_from_dict_agree() -> None:
    parsed = Where.parse(["source='*.pdf'", "page=3-5", "section=Chapter 2", "type=pdf,html"])
    from_dict = Where.from_dict(
        {"source": "*.pdf", "page": [3, 5], "section": "Chapter 2", "type": "pdf,html"}
    )
    assert parsed == from_dict
    assert parsed.sources == ("*.pdf",) and parsed.pages == (3, 5)
    assert parsed.types == frozenset({"pdf", "html"})
    assert Where.from_dict(parsed.to_dict()) == parsed
    assert Where.parse(["page=4"]).pages == (4, 4)
    assert Where.parse(["page=4-", "page=-6"]).pages == (4, 6)  # repeated keys narrow (AND)
    assert Where.parse(["type=html", "type=pdf,html"]).types == frozenset({"html"})
    assert Where.coerce(None) is None and Where.coerce([]) is None
    assert Where.coerce("type=.HTM") == Where(types=frozenset({"html"}))


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["colour=red"], "unknown filter key 'colour'"),
        (["source"], "KEY=VALUE"),
        (["page=three"], "page must be"),
        (["page=5-3"], "empty"),
        (["page=0"], "pages from 1"),
        (["section="], "needs a value"),
    ],
)
def test_malformed_filters_say_what_is_wrong(items: list[str], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        Where.parse(items)


def test_from_dict_refuses_odd_values() -> None:
    with pytest.raises(FilterError, match="takes a string"):
        Where.from_dict({"source": {"a": 1}})
    with pytest.raises(FilterError, match=r"\[first, last\]"):
        Where.from_dict({"page": [1, 2, 3]})


def test_matching_rules() -> None:
    pdf = chunk(1, "/srv/data/manual.pdf", "x", page=4, section=("Chapter 2", "2.1 Apt"))
    html = chunk(2, "/srv/docs/a.html", "x", section=("Install",))
    assert Where.parse(["source=*.pdf"]).matches(pdf) and not Where.parse(["source=*.pdf"]).matches(
        html
    )
    assert Where.parse(["source=docs/*"]).matches(html)  # from any folder down
    assert not Where.parse(["source=/docs/*"]).matches(html)  # an absolute glob is whole
    assert Where.parse(["type=pdf"]).matches(pdf) and Where.parse(["type=htm"]).matches(html)
    assert Where.parse(["page=3-5"]).matches(pdf) and not Where.parse(["page=5-"]).matches(pdf)
    assert not Where.parse(["page=1-9"]).matches(html)  # no page: fails a page condition
    assert Where.parse(["section=chapter 2"]).matches(pdf)
    assert Where.parse(["section=2.1"]).matches(pdf)  # any heading on the path
    assert Where.parse(["section=Chapter 2 > 2.1 a"]).matches(pdf)
    assert not Where.parse(["section=Install"]).matches(pdf)
    assert Where.parse(["type=pdf", "type=html"]).types == frozenset()  # contradiction: nothing
    assert not Where.parse(["type=pdf", "type=html"]).matches(pdf)


def test_file_types() -> None:
    assert file_type("a/b.HTML") == "html" and file_type("x.htm") == "html"
    assert file_type("m.txt.gz") == "text" and file_type("README") == "text"
    assert file_type("n.md") == "markdown" and file_type("d.docx") == "docx"
    assert file_type("data.csv") == "csv" and file_type(".bashrc") == "text"


def test_resolve_and_the_chroma_clause() -> None:
    sources = ["/d/a.pdf", "/d/b.html", "/e/c.pdf"]
    where = resolve_where({"source": "d/*", "type": "pdf", "page": "2-"}, lambda: sources)
    assert where is not None and where.resolved == frozenset({"/d/a.pdf"})
    assert chroma_where(where) == {
        "$and": [{"source": {"$in": ["/d/a.pdf"]}}, {"page": {"$gte": 2}}]
    }
    assert fully_pushed(where) and not fully_pushed(Where.parse(["source=*.pdf"]))
    assert not fully_pushed(Where.parse(["section=A"]))
    assert chroma_where(Where.parse(["section=A"])) is None


# -- every store kind: k hits back, all matching ---------------------------------------------------


def make_store(kind: str, tmp_path: Path, chunks: list[Chunk]):  # noqa: ANN201
    from rag.stores import get_store

    if kind == "bm25":
        store = get_store("bm25", path=tmp_path / "bm25")
        store.add(chunks, BM25Encoder().embed_documents([c.text for c in chunks]))
        return store, BM25Encoder()
    if kind == "chroma":
        store = get_store("chroma", path=tmp_path / "chroma", collection="hash")
    else:
        store = get_store("memory", path=tmp_path / "memory")
    store.add(chunks, HashEncoder().embed_documents([c.text for c in chunks]))
    return store, HashEncoder()


@pytest.mark.parametrize("kind", ["memory", "bm25", "chroma"])
@pytest.mark.parametrize(
    "items", [["source=*.pdf"], ["type=pdf", "page=3-7"], ["section=Chapter 2 > 2.1"]]
)
def test_each_store_returns_k_matching_hits(kind: str, items: list[str], tmp_path: Path) -> None:
    chunks = corpus()
    store, encoder = make_store(kind, tmp_path, chunks)
    query = encoder.embed_query(QUERY)
    where = Where.parse(items)
    wanted = matching(where, chunks)
    assert 4 <= len(wanted) <= 8  # a small minority of the 60
    assert not {c.id for c, _ in store.search(query, 4)} & wanted  # unfiltered: none of them
    found = store.search(query, 4, where=where)
    assert len(found) == 4 and {c.id for c, _ in found} <= wanted
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    many = store.search_many([query, query], 50, where=where)
    assert [{c.id for c, _ in f} for f in many] == [wanted, wanted]  # all there are, no more


@pytest.mark.parametrize("kind", ["memory", "bm25", "chroma"])
def test_a_filter_matching_nothing_gives_nothing(kind: str, tmp_path: Path) -> None:
    store, encoder = make_store(kind, tmp_path, corpus())
    assert store.search(encoder.embed_query(QUERY), 3, where=Where.parse(["source=*.docx"])) == []
    retriever = StoreRetriever(encoder, store, sources=lambda: ["/data/pdf/manual52.pdf"])
    assert retriever.retrieve(QUERY, 3, where={"type": "docx"}) == []


def test_chroma_pushes_resolved_sources_down(tmp_path: Path) -> None:
    chunks = corpus()
    store, encoder = make_store("chroma", tmp_path, chunks)
    sources = sorted({c.source for c in chunks})
    retriever = StoreRetriever(encoder, store, sources=lambda: sources)
    calls: list[object] = []
    query = store._collection.query

    def spy(**kwargs):  # noqa: ANN003, ANN202
        calls.append(kwargs["where"])
        return query(**kwargs)

    store._collection.query = spy  # type: ignore[method-assign]
    hits = retriever.retrieve(QUERY, 4, where=["source=*.pdf", "page=3-"])
    assert len(hits) == 4 and all(h.chunk.source.endswith(".pdf") for h in hits)
    pdfs = [s for s in sources if s.endswith(".pdf")]
    assert calls == [
        {"$and": [{"source": {"$in": pdfs}}, {"page": {"$gte": 3}}]}
    ]  # one query, all of it checked by Chroma


# -- through an index and fusion -----------------------------------------------------------------


def documents() -> list[Document]:
    docs = []
    for c in corpus():
        span = Span(0, len(c.text), c.section, c.page)
        docs.append(Document(c.id, c.text, c.source, sha256_hex(c.text), spans=[span]))
    return docs


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    register_hash_encoder(monkeypatch)
    entries = [EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")]
    built = Index(tmp_path / "idx", IndexConfig(encoders=entries, store="memory"))
    built.ingest(documents())
    return built


def test_index_search_filters_before_fusion(index: Index) -> None:
    plain = index.search(QUERY, 4, dedup=False)
    assert not any(h.chunk.source.endswith(".pdf") for h in plain)
    for where in (["source=*.pdf"], {"type": "pdf", "page": "3-7"}, Where.parse(["type=pdf"])):
        hits = index.search(QUERY, 4, where=where, dedup=False)
        assert len(hits) == 4 and all(h.chunk.source.endswith(".pdf") for h in hits)
        assert [h.rank for h in hits] == [1, 2, 3, 4]
        assert all(set(h.components) <= {"hash", "bm25"} for h in hits)


def test_fused_and_encoder_retrievers_take_where(index: Index) -> None:
    fused = index.fused_retriever("rrf", dedup=False)
    assert isinstance(fused, FusionRetriever)
    hits = fused.retrieve(QUERY, 3, where={"section": "chapter 2"})
    assert len(hits) == 3 and all(h.chunk.section[0] == "Chapter 2" for h in hits)
    batch = fused.retrieve_many([QUERY, "pdf page"], 3, where={"source": "notes/*"})
    assert all(len(b) == 3 and all("/notes/" in h.chunk.source for h in b) for b in batch)
    for name in ("hash", "bm25"):
        one = index.retriever(name, dedup=False).retrieve(QUERY, 5, where=["type=pdf"])
        assert len(one) == 5 and all(h.chunk.page is not None for h in one)


def test_cli_where_flags(index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    args = ["search", QUERY, "--index", str(index.root), "-k", "3", "--json"]
    assert main([*args, "--where", "source=*.pdf", "--where", "page=3-5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["source"].endswith(".pdf") for r in rows)
    assert all(3 <= r["page"] <= 5 for r in rows) and all(r["duplicates"] == [] for r in rows)
    assert main([*args, "--where", "type=html", "--where", "section=Install"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["source"].endswith(".html") for r in rows)


@pytest.mark.parametrize(
    ("flag", "message"),
    [("colour=red", "unknown filter key 'colour'"), ("page=x", "page must be"), ("pdf", "KEY=")],
)
def test_cli_rejects_bad_filters_before_loading(
    flag: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["search", "q", "--index", str(tmp_path / "none"), "--where", flag])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
