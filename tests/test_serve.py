"""``rag serve``'s HTTP API, through a real HTTP client against a real server on loopback."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fakes import register_hash_encoder
from tests.serve_helpers import running_server, write_docs

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    import rag
    from rag.serve import ServeSettings, create_app

    register_hash_encoder(monkeypatch)
    index = rag.Index.create(tmp_path / "idx", encoders=["hash", "bm25"], store="memory")
    index.ingest(rag.load_directory(write_docs(tmp_path / "docs")))
    app = create_app(ServeSettings(index=tmp_path / "idx", generator="echo"))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, tmp_path


def test_health_and_info(served) -> None:  # noqa: ANN001
    client, _ = served
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert [e["name"] for e in info["encoders"]] == ["hash", "bm25"]


def test_search_answers_hits_with_the_contract_fields(served) -> None:  # noqa: ANN001
    client, _ = served
    response = client.post("/search", json={"query": "reciprocal rank fusion", "k": 2})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert len(hits) == 2
    top = hits[0]
    for key in ("source", "section", "page", "text", "score", "relevance", "components"):
        assert key in top
    assert top["source"].endswith("fusion.md") and top["section"] == ["Fusion", "Reciprocal rank"]
    assert set(top["components"]) <= {"hash", "bm25"} and top["components"]
    for row in top["components"].values():
        assert row["rank"] >= 1 and isinstance(row["score"], float)
    ctx = top["context"]
    assert ctx["text"][ctx["mark_start"] : ctx["mark_end"]] == top["text"]


def test_search_one_encoder(served) -> None:  # noqa: ANN001
    client, _ = served
    hits = client.post("/search", json={"query": "virtual environment", "encoder": "bm25"}).json()
    assert hits["hits"][0]["source"].endswith("install.txt")
    assert hits["hits"][0]["retriever"] == "bm25"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": ""}, 422, "query"),
        ({"k": 3}, 422, "query"),
        ({"query": "x", "k": 0}, 422, "k"),
        ({"query": "x", "encoder": "hsah"}, 422, "this index has: hash, bm25"),
        ({"query": "x", "fusion": "nope"}, 422, "nope"),
    ],
)
def test_bad_search_requests_get_a_clear_4xx(served, body, status, needle) -> None:  # noqa: ANN001
    client, _ = served
    response = client.post("/search", json=body)
    assert response.status_code == status
    assert needle in json.dumps(response.json()["detail"])


def test_concurrent_searches_share_one_index(served) -> None:  # noqa: ANN001
    client, _ = served
    queries = ["reciprocal rank", "z-score mixture", "chunk context window", "CPU torch"] * 8
    expected = {q: client.post("/search", json={"query": q, "k": 1}).json() for q in set(queries)}

    def one(query: str) -> tuple[str, list[str]]:
        hits = client.post("/search", json={"query": query, "k": 1}).json()["hits"]
        return query, [h["chunk_id"] for h in hits]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, queries))
    assert len(results) == len(queries)
    for query, ids in results:
        assert ids == [h["chunk_id"] for h in expected[query]["hits"]]


def streamed_events(client, question: str) -> list[dict[str, str]]:  # noqa: ANN001
    """The server-sent events of one streamed ``/ask``, as field -> value blocks."""
    events = []
    with client.stream("POST", "/ask", json={"question": question}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                events.append(block)
                block = {}
                continue
            field, _, value = line.partition(": ")
            block[field] = value
    return events


def test_ask_streams_tokens_then_the_answer(served) -> None:  # noqa: ANN001
    client, _ = served
    events = streamed_events(client, "what does fusion add?")
    names = [e["event"] for e in events]
    assert names[-1] == "answer" and names.count("token") >= 1
    answer = json.loads(events[-1]["data"])
    streamed = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "token")
    assert streamed == answer["text"]
    assert answer["citations"] and answer["candidates"]
    assert {c["name"] for c in answer["candidates"]} == {"hash", "bm25"}
    assert 0 <= answer["chosen"] < len(answer["candidates"])


def test_concurrent_streamed_asks_each_get_their_own_whole_answer(served) -> None:  # noqa: ANN001
    client, _ = served
    questions = ["what does fusion add?", "how are chunks cut?", "what runs offline?"] * 3
    alone = {
        q: client.post("/ask", json={"question": q, "stream": False}).json() for q in questions
    }

    def one(question: str) -> tuple[str, str, dict]:
        events = streamed_events(client, question)
        tokens = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "token")
        return question, tokens, json.loads(events[-1]["data"])

    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(one, questions))
    for question, tokens, answer in results:  # no stream got another's tokens or lost any
        assert tokens == answer["text"] == alone[question]["text"]
        assert [c["source"] for c in answer["citations"]] == [
            c["source"] for c in alone[question]["citations"]
        ]


def test_ask_without_streaming_and_bad_strategy(served) -> None:  # noqa: ANN001
    client, _ = served
    answer = client.post("/ask", json={"question": "fusion?", "stream": False}).json()
    assert answer["strategy"] == "confident" and answer["citations"]
    bad = client.post("/ask", json={"question": "fusion?", "strategy": "confdent"})
    assert bad.status_code == 422 and "confident" in bad.json()["detail"]


def test_ingest_job_reports_progress_and_new_files_become_searchable(served) -> None:  # noqa: ANN001
    client, tmp_path = served
    more = tmp_path / "more"
    more.mkdir()
    (more / "barometer.md").write_text("# Weather\n\nThe barometer fell all night.\n")
    (more / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    started = client.post("/ingest", json={"path": str(more)})
    assert started.status_code == 202
    job = started.json()
    deadline = time.monotonic() + 60
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(job["status_url"]).json()
    assert job["state"] == "done", job
    assert job["files_total"] == 2 and job["files_done"] == 2
    assert job["report"]["ingested"] == 1
    assert [f["path"] for f in job["report"]["failed"]] == [str((more / "broken.pdf").resolve())]
    # the server's own retrievers see the new chunks (BM25 alone: the only match is first)
    body = {"query": "barometer", "k": 1, "encoder": "bm25"}
    hits = client.post("/search", json=body).json()["hits"]
    assert hits[0]["source"].endswith("barometer.md")
    fused = client.post("/search", json={"query": "barometer", "k": 3}).json()["hits"]
    assert any(h["source"].endswith("barometer.md") for h in fused)


def test_ingest_refuses_urls_and_missing_paths(served) -> None:  # noqa: ANN001
    client, tmp_path = served
    url = client.post("/ingest", json={"path": "https://example.org/a.pdf"})
    assert url.status_code == 422 and "URLs are not read" in url.json()["detail"]
    missing = client.post("/ingest", json={"path": str(tmp_path / "nope")})
    assert missing.status_code == 422 and "does not exist" in missing.json()["detail"]
    assert client.get("/jobs/unknown").status_code == 404


def test_openapi_names_the_routes(served) -> None:  # noqa: ANN001
    client, _ = served
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/search", "/ask", "/ingest", "/info", "/jobs/{job_id}"} <= set(paths)
    assert "text/html" in client.get("/").headers["content-type"]


def test_search_filters_min_score_and_dedup(served) -> None:  # noqa: ANN001
    client, _ = served
    body = {"query": "fusion chunk context install", "k": 5, "where": {"type": "text"}}
    hits = client.post("/search", json=body).json()["hits"]
    assert hits and all(h["source"].endswith(".txt") for h in hits)
    bad = client.post("/search", json={"query": "x", "where": {"colour": "red"}})
    assert bad.status_code == 422 and "colour" in bad.json()["detail"]
    every = client.post("/search", json={"query": "reciprocal rank", "k": 5}).json()["hits"]
    assert all(0.0 <= h["relevance"] <= 1.0 for h in every)
    cut = max(h["relevance"] for h in every)
    kept = client.post("/search", json={"query": "reciprocal rank", "k": 5, "min_score": cut})
    assert [h["relevance"] >= cut for h in kept.json()["hits"]] == [True] * len(kept.json()["hits"])
    assert 1 <= len(kept.json()["hits"]) < len(every)


def test_rerank_needs_a_reranker(served) -> None:  # noqa: ANN001
    client, _ = served
    response = client.post("/search", json={"query": "x", "rerank": True})
    assert response.status_code == 422 and "--rerank" in response.json()["detail"]


def test_a_server_with_a_cross_encoder_reranks(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    pytest.importorskip("sentence_transformers")
    import rag
    from rag.serve import ServeSettings, create_app
    from tests.fakes import tiny_cross_encoder
    from tests.serve_helpers import DOCS

    register_hash_encoder(monkeypatch)
    index = rag.Index.create(tmp_path / "idx", encoders=["hash", "bm25"], store="memory")
    index.ingest(rag.load_directory(write_docs(tmp_path / "docs")))
    model = tiny_cross_encoder(tmp_path / "ce", list(DOCS.values()))
    settings = ServeSettings(index=tmp_path / "idx", generator="echo", rerank=str(model))
    with running_server(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        hits = client.post("/search", json={"query": "reciprocal rank", "k": 3}).json()["hits"]
        plain = client.post("/search", json={"query": "reciprocal rank", "rerank": False})
    assert all("rerank:ce" in h["components"] for h in hits)
    assert [h["components"]["rerank:ce"]["rank"] for h in hits] == [1, 2, 3]
    assert all("rerank:ce" not in h["components"] for h in plain.json()["hits"])
