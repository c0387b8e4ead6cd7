"""Plain-text connector: the decoded text as one span.

Only UTF-8 (with or without a BOM) is accepted, and UTF-16 when a BOM declares it; plain text
has no other way to declare its charset, and guessing one (latin-1 always "succeeds") would
index mojibake without anyone noticing. Anything else is reported as "not valid UTF-8 text".
"""

from __future__ import annotations

from connectors.common import ConnectorError, decode_text, make_document, stem
from rag.types import Document


def parse_text(data: bytes, *, id: str, source: str) -> Document:
    text = decode_text(data)
    if "\x00" in text:
        raise ConnectorError("binary file (contains NUL characters)")
    return make_document(
        text,
        [(0, (), None)],
        id=id,
        source=source,
        data=data,
        title=stem(source),
        metadata={"format": "text"},
        empty_reason="no text (only whitespace)",
    )
