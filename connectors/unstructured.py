"""Connector through ``unstructured`` (optional extra) for formats without a native connector.

Install with ``pip install "situated-rag[unstructured]"`` (plain ``unstructured``, not
``unstructured[pdf]``, which pulls a CUDA torch and downloads layout models; PDFs go through
pypdf here anyway). Use it with ``load_file(path, format="unstructured")``; it is never
chosen automatically.

Offline: ``unstructured`` pings a telemetry endpoint at import unless ``DO_NOT_TRACK`` is set,
and its text-type heuristics (``partition.text_type``: "is this narrative text?", used by the
text, HTML, DOCX, PPTX and XLSX partitioners) call spaCy through
``unstructured.nlp.tokenize._get_nlp``, which downloads and pip-installs ``en_core_web_sm``
from GitHub on first use. When that model is not installed, this connector gives
``unstructured`` a blank English spaCy pipeline with a rule-based sentencizer instead (no
weights, no download). Sentence counts still work; part-of-speech tags are empty, so
"contains a verb" is always false: short one-sentence paragraphs are typed ``Text`` instead of
``NarrativeText``, and ``partition_text`` may type them ``Title``. Install ``en_core_web_sm``
yourself for unstructured's full heuristics; it is then used as is.

Elements become blocks separated by blank lines; ``Title`` elements (with their
``category_depth``) open sections; ``page_number`` metadata becomes span pages; page headers,
footers and page breaks are dropped.
"""

from __future__ import annotations

import io
import os
from typing import Any

from connectors.common import (
    ConnectorError,
    MissingExtra,
    TextBuilder,
    collapse_ws,
    push_heading,
    stem,
)
from rag.types import Document

INSTALL_HINT = 'pip install "situated-rag[unstructured]"'
SKIPPED_CATEGORIES = {"Header", "Footer", "PageBreak", "PageNumber"}
_patched = False


def require_unstructured() -> Any:
    """Import ``unstructured.partition.auto`` offline; a clear ImportError when missing."""
    global _patched
    # Set before the first import: unstructured pings its telemetry endpoint on import.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    try:
        from unstructured.partition import auto
    except ImportError as exc:
        raise MissingExtra(
            f"the unstructured connector needs the optional extra: {INSTALL_HINT} ({exc})"
        ) from exc
    if not _patched:
        _use_blank_spacy_unless_model_installed()
        _patched = True
    return auto


def _use_blank_spacy_unless_model_installed() -> None:
    import spacy
    import unstructured.nlp.tokenize as tokenize

    if spacy.util.is_package(getattr(tokenize, "_SPACY_MODEL_NAME", "en_core_web_sm")):
        return
    if not hasattr(tokenize, "_get_nlp"):
        return  # a version that no longer loads spaCy this way needs no fallback
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")

    def blank_pipeline() -> Any:
        return nlp

    # The one seam unstructured offers: every tokenize function looks this up at call time.
    tokenize._get_nlp = blank_pipeline


def parse_unstructured(data: bytes, *, id: str, source: str) -> Document:
    auto = require_unstructured()
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        elements = auto.partition(file=io.BytesIO(data), metadata_filename=name)
    except MissingExtra:
        raise
    except ImportError as exc:  # a partitioner whose own extra is missing, e.g. [md], [pptx]
        raise ConnectorError(f"unstructured cannot read this type: {exc}") from exc
    except ValueError as exc:  # e.g. unsupported or undetectable file type
        raise ConnectorError(f"unstructured: {exc}") from exc

    out = TextBuilder()
    stack: list[tuple[int, str]] = []
    section: tuple[str, ...] = ()
    page: int | None = None
    titles: list[str] = []
    for element in elements:
        category = getattr(element, "category", "")
        text = (getattr(element, "text", "") or "").strip()
        if category in SKIPPED_CATEGORIES or not text:
            continue
        meta = getattr(element, "metadata", None)
        element_page = getattr(meta, "page_number", None)
        changed = element_page != page
        page = element_page
        out.brk(2)
        if category == "Title":
            depth = getattr(meta, "category_depth", None) or 0
            title = collapse_ws(text)
            titles.append(title)
            section = push_heading(stack, depth, title)
            changed = True
        if changed:
            out.mark(section, page)
        out.write(text)
    return out.document(
        id=id,
        source=source,
        data=data,
        title=titles[0] if titles else stem(source),
        metadata={"format": "unstructured", "elements": len(elements)},
    )
