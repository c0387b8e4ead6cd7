"""The search page of ``rag serve`` in a real headless Chromium (driven by Playwright): a query
shows hits with their place, encoders and the chunk highlighted in its context; an ask shows
the streamed answer, its citations linked to the hits and every candidate's confidence."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fakes import register_hash_encoder
from tests.serve_helpers import running_server, write_docs

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine (Debian package 'chromium')", allow_module_level=True)

# Chromium's background services try hosts this closed network refuses: keep it quiet
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    import rag
    from rag.serve import ServeSettings, create_app

    register_hash_encoder(monkeypatch)
    index = rag.Index.create(tmp_path / "idx", encoders=["hash", "bm25"], store="memory")
    index.ingest(rag.load_directory(write_docs(tmp_path / "docs")))
    with running_server(create_app(ServeSettings(index=tmp_path / "idx", generator="echo"))) as url:
        yield url


def test_page_searches_and_asks(page_url: str, tmp_path: Path) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(page_url + "/")
            page.fill("#query", "reciprocal rank fusion")
            page.click("#search-button")
            page.wait_for_selector(".hit")
            first = page.locator(".hit").first
            assert "fusion.md" in first.locator(".place").inner_text()
            assert "Fusion > Reciprocal rank" in first.locator(".place").inner_text()
            assert "hash #" in first.locator(".components").inner_text()
            marked = first.locator("mark").inner_text()
            assert "Reciprocal rank fusion adds one over sixty" in marked

            page.click("#ask-button")
            page.wait_for_selector("#candidates tr.candidate", timeout=30_000)
            assert page.locator("#answer-text").inner_text().strip()
            names = page.locator("#candidates tr.candidate td:first-child").all_inner_texts()
            assert {n.replace(" (chosen)", "") for n in names} == {"hash", "bm25"}
            assert sum("(chosen)" in n for n in names) == 1
            link = page.locator("#citations a").first
            target = link.get_attribute("href")
            assert target and target.startswith("#hit-")
            assert page.locator(target).count() == 1  # the citation points at a shown hit
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert (tmp_path / "page.png").stat().st_size > 10_000
        finally:
            browser.close()


def test_page_shows_a_bad_request_as_an_error(page_url: str) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(page_url + "/?q=" + "x" * 10_001)  # longer than the API accepts
            page.wait_for_selector("#status.error")
            assert "10000" in page.locator("#status").inner_text()
        finally:
            browser.close()
