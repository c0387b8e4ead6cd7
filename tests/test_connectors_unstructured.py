"""The optional unstructured connector, offline (skipped when `unstructured` is not installed)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from fixtures_docs import make_docx
from test_connectors import check_spans, sections

from connectors.directory import load_directory, load_file
from rag.types import Document

pytestmark = [
    pytest.mark.slow,  # importing unstructured (spaCy, numba) takes ~10 s
    pytest.mark.skipif(
        importlib.util.find_spec("unstructured") is None,
        reason='needs the optional extra: pip install "situated-rag[unstructured]"',
    ),
]

HTML = (
    "<html><head><title>Pets</title></head><body><h1>Cats</h1><p>Cats sleep a lot.</p>"
    "<h2>Food</h2><p>They eat fish and chicken every day.</p><h1>Dogs</h1><p>Dogs bark.</p>"
    "</body></html>"
)


def test_unstructured_html_and_docx_offline(tmp_path: Path) -> None:
    # sockets are disabled in tests: a telemetry ping or the en_core_web_sm download would fail
    (tmp_path / "pets.html").write_text(HTML, "utf-8")
    (tmp_path / "report.docx").write_bytes(make_docx())
    html, docx = list(load_directory(tmp_path, format="unstructured"))
    assert isinstance(html, Document), html
    check_spans(html)
    assert html.metadata["format"] == "unstructured"
    assert sections(html) == [("Cats",), ("Cats", "Food"), ("Dogs",)]
    assert "They eat fish" in html.text
    assert os.environ.get("DO_NOT_TRACK")

    assert isinstance(docx, Document), docx
    check_spans(docx)
    assert "Readings were taken at noon." in docx.text
    assert any(p and p[-1] == "Measurements" for p in sections(docx))


def test_unstructured_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Shipping update.\n\nThe parcel left the depot on Monday morning.\n", "utf-8")
    doc = load_file(path, format="unstructured")
    assert isinstance(doc, Document), doc
    check_spans(doc)
    assert "parcel left the depot" in doc.text
