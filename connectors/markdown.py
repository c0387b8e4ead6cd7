"""Markdown connector: the raw text, with ATX and setext headings as the section hierarchy.

``Document.text`` is the file's text unchanged (only a UTF-8 BOM is dropped), so offsets index
what the author wrote. A heading's span starts at the heading line. Lines inside fenced code
blocks (``` or ~~~), indented code blocks and a leading YAML front-matter block are never
headings. Following CommonMark: ATX headings are ``#``..``######`` followed by a space (or
nothing), indented at most three spaces; a setext heading is a paragraph underlined with ``=``
(level 1) or ``-`` (level 2), where a paragraph opened by a list item or block quote does not
count (``- item`` then ``---`` is a list and a rule).
"""

from __future__ import annotations

import re

from connectors.common import (
    Mark,
    collapse_ws,
    decode_text,
    make_document,
    push_heading,
    stem,
)
from rag.types import Document

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
# Linear patterns only: a lazy group before trailing whitespace (``(.*?)[ \t]*$``) or a search
# for a closing sequence is quadratic on one huge line; the trailing parts are cut with str
# methods instead (_atx_title).
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_SETEXT_START = re.compile(r"^ {0,3}(?:[-+*][ \t]|\d{1,9}[.)][ \t]|>|[-+*]$)")
_BLANK = re.compile(r"^[ \t]*$")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")

# Inline markup removed from heading titles (the text itself keeps it).
_ATTR_LIST = re.compile(r"[ \t]*\{[:#.][^{}]*\}[ \t]*$")  # "## Title {#anchor}"
# Headings are cut (common.short_title); cleaning only this much keeps the regexes cheap.
_MAX_RAW_HEADING = 1000
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*\*|__|`+)")
_SINGLE_EMPHASIS = re.compile(r"(?<![\w*])[*_]([^*_\s][^*_]*)[*_](?![\w*])")


def clean_heading(raw: str) -> str:
    title = _ATTR_LIST.sub("", raw[:_MAX_RAW_HEADING])
    title = _LINK.sub(r"\1", title)
    title = _TAG.sub("", title)
    title = _EMPHASIS.sub("", title)
    title = _SINGLE_EMPHASIS.sub(r"\1", title)
    return collapse_ws(title)


def _atx_title(content: str) -> str:
    """An ATX heading's content without trailing blanks and its optional closing ``#``s (which
    count only after a blank or as the whole content)."""
    content = content.rstrip(" \t")
    bare = content.rstrip("#")
    if bare == content:
        return content
    if not bare or bare[-1] in " \t":
        return bare.rstrip(" \t")
    return content


def front_matter_lines(lines: list[str]) -> int:
    """How many lines of YAML front matter open the text (only at the very top, closed by
    ``---`` or ``...``); 0 without any."""
    if lines and lines[0].rstrip("\r\n") == "---":
        for j in range(1, len(lines)):
            if lines[j].rstrip("\r\n") in ("---", "..."):
                return j + 1
    return 0


def closes_fence(line: str, fence: tuple[str, int]) -> bool:
    """Whether ``line`` closes a fenced block opened by ``fence`` (its char and length)."""
    m = _FENCE.match(line)
    if m is None or m.group(2).strip():
        return False
    return m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1]


def heading_marks(text: str) -> tuple[list[Mark], list[tuple[int, str]]]:
    """Section marks and the (level, title) headings of a Markdown text, in order."""
    marks: list[Mark] = [(0, (), None)]
    headings: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []

    def heading(offset: int, level: int, raw: str) -> None:
        title = clean_heading(raw)
        if title:
            marks.append((offset, push_heading(stack, level, title), None))
            headings.append((level, title))

    lines = text.splitlines(keepends=True)
    index = front_matter_lines(lines)
    offset = sum(len(line) for line in lines[:index])

    fence: tuple[str, int] | None = None  # (fence char, length) while inside a fenced block
    para_start: int | None = None  # offset of the open paragraph's first line
    para_lines: list[str] = []
    para_setext_ok = False
    for line in lines[index:]:
        body = line.rstrip("\r\n")
        start, offset = offset, offset + len(line)
        if fence is not None:
            if closes_fence(body, fence):
                fence = None
            continue
        m = _FENCE.match(body)
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = (m.group(1)[0], len(m.group(1)))
            para_start = None
            continue
        if _BLANK.match(body):
            para_start = None
            continue
        if para_start is None and (body.startswith("    ") or body.startswith("\t")):
            continue  # indented code block
        m = _ATX.match(body)
        if m:
            heading(start, len(m.group(1)), _atx_title(m.group(2) or ""))
            para_start = None
            continue
        m = _SETEXT.match(body)
        if m and para_start is not None and para_setext_ok:
            heading(para_start, 1 if m.group(1)[0] == "=" else 2, " ".join(para_lines))
            para_start = None
            continue
        if _RULE.match(body):  # a thematic break ends the paragraph
            para_start = None
            continue
        if para_start is None:
            para_start, para_lines = start, []
            para_setext_ok = not _NOT_SETEXT_START.match(body)
        para_lines.append(body.strip())
    return marks, headings


def parse_markdown(data: bytes, *, id: str, source: str) -> Document:
    text = decode_text(data)
    marks, headings = heading_marks(text)
    title = next((t for level, t in headings if level == 1), None)
    return make_document(
        text,
        marks,
        id=id,
        source=source,
        data=data,
        title=title or (headings[0][1] if headings else stem(source)),
        metadata={"format": "markdown", "headings": len(headings)},
    )
