"""Page furniture of PDF text: running headers and footers, and printed page labels.

A running header or footer is the first or last line of a page that repeats, page numbers
aside, on most pages ("Debian Reference 98/ 233"): it says nothing about the text under it, and
left in, it opens (or closes) a chunk of every page. Such lines are taken out of the page text
and kept in the document's metadata (``running_header``, ``running_footer``: the line as first
printed), so nothing is dropped without a record.

The printed page label (``reader.page_labels``: "iv", "98") differs from the physical page
number wherever a document numbers its front matter apart; it is kept as ``page_labels`` (one
per physical page) when any label differs from the physical number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

MIN_PAGES = 3  # with fewer pages, "repeats on most pages" says nothing
MOST = 0.5  # the share of text pages a line must repeat on

_NOT_LETTERS = re.compile(r"[\W\d_]+")
_FIRST_LINE = re.compile(r"\A\s*(\S[^\n]*)(?:\n|\Z)")
_LAST_LINE = re.compile(r"(?:\A|\n)([^\n]*\S)\s*\Z")


def page_labels(reader: Any, count: int) -> list[str] | None:
    """The printed label of each page, or None when they are the physical numbers (or
    unreadable: a broken /PageLabels tree is no reason to lose the text)."""
    try:
        labels = [str(label) for label in reader.page_labels]
    except Exception:
        return None
    if len(labels) != count or all(label == str(i) for i, label in enumerate(labels, 1)):
        return None
    return labels


def _key(line: str, label: str) -> str:
    """What a line says once page numbers are gone: its letters, lower case, without the
    page's own label (so "Debian Reference xi" and "Debian Reference 98/ 233" agree)."""
    if label and not label.isdigit():
        line = re.sub(rf"(?<!\w){re.escape(label)}(?!\w)", " ", line)
    return _NOT_LETTERS.sub("", line).lower()


def _repeated(keys: list[str | None], pages: int) -> set[str]:
    counts = Counter(k for k in keys if k is not None)
    return {k for k, n in counts.items() if n >= MIN_PAGES and n >= MOST * pages}


def strip_running_lines(
    pages: Sequence[str], labels: Sequence[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """``pages`` without their running header and footer lines, and what was taken out
    (``{"running_header": line, "running_footer": line}``, each where one was found)."""
    labels = labels or [str(i) for i in range(1, len(pages) + 1)]
    firsts = [_FIRST_LINE.search(p) for p in pages]
    lasts = [_LAST_LINE.search(p) for p in pages]
    with_text = sum(m is not None for m in firsts)
    if with_text < MIN_PAGES:
        return list(pages), {}
    head_keys = [
        _key(m.group(1), lab) if m else None for m, lab in zip(firsts, labels, strict=True)
    ]
    foot_keys = [_key(m.group(1), lab) if m else None for m, lab in zip(lasts, labels, strict=True)]
    heads, feet = _repeated(head_keys, with_text), _repeated(foot_keys, with_text)
    out: list[str] = []
    found: dict[str, str] = {}
    for page, first, last, hk, fk in zip(pages, firsts, lasts, head_keys, foot_keys, strict=True):
        start, end = 0, len(page)
        if first is not None and hk in heads:
            found.setdefault("running_header", first.group(1).strip())
            start = first.end()
        if last is not None and fk in feet and last.start(1) >= start:
            found.setdefault("running_footer", last.group(1).strip())
            end = last.start(1)
        out.append(page[start:end])
    if not any(p.strip() for p in out):  # only furniture left: it was the text after all
        return list(pages), {}
    return out, found
