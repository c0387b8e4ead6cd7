"""Plain-text connector: the decoded text, with numbered headings as sections.

Only UTF-8 (with or without a BOM) is accepted, and UTF-16 when a BOM declares it; plain text
has no other way to declare its charset, and guessing one (latin-1 always "succeeds") would
index mojibake without anyone noticing. Anything else is reported as "not valid UTF-8 text".

Plain text has one common way to mark its structure: numbered heading lines ("1. Introduction",
"2.7.14. Proxy server for APT", "Chapter 5", "A.1 Tables"). A line is taken for a heading when
it stands alone between blank lines (or the text's ends), is short and title-like (at most
:data:`MAX_HEADING_WORDS` words, starting with a capital or digit, not ending like a sentence
with ``.``, ``:``, ``;``, ``,``, ``!`` or ``?``), and is indented by at most three spaces. Its
depth is that of its number (``2.7.14`` is at level 3, under ``2.7`` and ``2``); "Part" opens a
level above chapters. Numbered list items inside a paragraph are not headings: they have lines
next to them, or end with a period.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from connectors.common import (
    ConnectorError,
    Mark,
    collapse_ws,
    decode_text,
    make_document,
    push_heading,
    stem,
)
from rag.types import Document

MAX_HEADING_WORDS = 12
MAX_HEADING_CHARS = 100

_KEYWORD = r"(?P<kw>Chapter|CHAPTER|Appendix|APPENDIX|Part|PART|Section|SECTION)"
_NUMBER = r"(?P<num>\d{1,3}|[A-Z]|[IVXLC]{1,7})(?P<sub>(?:\.\d{1,3})*)(?P<dot>\.?)"
# [^\S\n]: any space but a line break (exports put no-break spaces after numbers: "2.7.14.\xa0")
_HEADING = re.compile(
    rf"(?m)^[^\S\n]{{0,3}}(?P<line>(?:{_KEYWORD}[^\S\n]+)?{_NUMBER}"
    r"(?:[^\S\n]+(?P<title>\S[^\n]*?))?)[^\S\n]*$"
)
_BLANK = re.compile(r"[^\S\n]*")
_SENTENCE_END = ".,;:!?"


def parse_text(data: bytes, *, id: str, source: str) -> Document:
    text = decode_text(data)
    if "\x00" in text:
        raise ConnectorError("binary file (contains NUL characters)")
    marks: list[Mark] = [(0, (), None)]
    stack: list[tuple[int, str]] = []
    for offset, level, title in numbered_headings(text):
        marks.append((offset, push_heading(stack, level, title), None))
    return make_document(
        text,
        marks,
        id=id,
        source=source,
        data=data,
        title=stem(source),
        metadata={"format": "text"},
        empty_reason="no text (only whitespace)",
    )


def numbered_headings(text: str) -> Iterator[tuple[int, int, str]]:
    """``(offset, level, title)`` of each numbered heading line of ``text``, in order."""
    for match in _HEADING.finditer(text):
        if not (_alone(text, match.start(), match.end()) and _title_like(match)):
            continue
        yield match.start("line"), _level(match), collapse_ws(match.group("line"))


def _alone(text: str, start: int, end: int) -> bool:
    """Whether the line ``text[start:end]`` has a blank line (or an end of the text) on each
    side."""
    if start > 0:
        before = text.rfind("\n", 0, start - 1) + 1
        if not _BLANK.fullmatch(text, before, start - 1):
            return False
    if end < len(text):
        after = text.find("\n", end + 1)
        if not _BLANK.fullmatch(text, end + 1, len(text) if after < 0 else after):
            return False
    return True


def _title_like(match: re.Match[str]) -> bool:
    line, title, num = match.group("line"), match.group("title"), match.group("num")
    if title is None:  # a bare number is a page number; "Chapter 5" is a heading
        return match.group("kw") is not None
    if len(line) > MAX_HEADING_CHARS or len(title.split()) > MAX_HEADING_WORDS:
        return False
    if title[-1] in _SENTENCE_END or not (title[0].isupper() or title[0].isdigit()):
        return False
    if match.group("kw") or match.group("sub"):
        return True
    # "A. Appendix", "IV. Results", "3. Methods": a letter, a roman numeral or a year-like
    # number needs its dot ("A short line", "2023 was"); up to two digits may go without
    return bool(match.group("dot")) or (num.isdigit() and len(num) <= 2)


def _level(match: re.Match[str]) -> int:
    if (match.group("kw") or "").lower() == "part":
        return 0
    return 1 + match.group("sub").count(".")
