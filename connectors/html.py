"""HTML connector (BeautifulSoup + lxml): the main text, with h1-h6 as the section hierarchy.

The text comes from ``<main>`` (or ``role="main"``, or the only ``<article>``) when the page has
one, else from ``<body>``. Scripts, styles, navigation, page headers and footers, asides and
``<noscript>`` are dropped, as are their ARIA equivalents and DocBook's navigation bars. A
``<header>``/``<footer>`` inside an ``<article>``/``<section>``/``<main>`` belongs to that
content (it often holds the article's ``<h1>``) and is kept. Block elements are separated by
newlines (a blank line around paragraphs, headings, lists, tables and preformatted text),
inline whitespace is collapsed, ``<pre>`` is kept verbatim, and table rows become lines of
cells separated by `` | ``. The title is ``<title>``, else the first ``<h1>``, else the file
name; text under no heading (a page without any h1-h6) has the title as its section.

The input is bytes, so the document's own declaration (BOM, ``<meta charset>``, XML
declaration) decides its encoding.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from connectors.common import (
    TextBuilder,
    collapse_ws,
    join_cells,
    make_document,
    push_heading,
    short_title,
    stem,
)
from rag.types import Document

DROP_TAGS = ("script", "style", "nav", "aside", "noscript", "template", "iframe", "object", "svg")
PAGE_CHROME_TAGS = ("header", "footer")
DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search"}
DROP_CLASSES = {"navheader", "navfooter"}  # DocBook XSL's previous/next bars
SECTIONING = {"article", "section", "main"}
HEADINGS = {f"h{n}": n for n in range(1, 7)}
# blank line around these; a single newline around the other block elements
PARAGRAPH_BLOCKS = {
    "p", "pre", "ul", "ol", "dl", "table", "blockquote", "figure", "hr", "address", "details",
    "section", "article", "main", "form", "fieldset",
}  # fmt: skip
LINE_BLOCKS = {
    "div", "li", "dt", "dd", "caption", "figcaption", "summary", "legend", "body", "html",
    "center", "dialog", "hgroup", "menu", "option", "tbody", "thead", "tfoot", "label",
}  # fmt: skip


def parse_html(data: bytes, *, id: str, source: str) -> Document:
    soup = _soup(data)
    title_tag = soup.find("title")
    title = collapse_ws(title_tag.get_text(" ")) if title_tag else ""
    _drop_chrome(soup)
    root = _main_root(soup)
    walker = _Walker()
    walker.walk(root)
    text = walker.out.text
    if not title:
        first_h1 = next((t for level, t in walker.headings if level == 1), None)
        title = first_h1 or ""
    title = title or stem(source)
    # Text under no heading (all of a page without h1-h6) belongs to the page, named by its title.
    return make_document(
        text,
        [(0, (short_title(title),), None), *walker.out.marks],
        id=id,
        source=source,
        data=data,
        title=title,
        metadata={"format": "html", "headings": len(walker.headings)},
    )


def _soup(data: bytes) -> Any:
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    # XHTML pages start with an XML declaration; parsing them as HTML is what we want, so
    # silence exactly that warning, only around this call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        return BeautifulSoup(data, "lxml")


def _drop_chrome(soup: Any) -> None:
    for tag in soup.find_all(DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(PAGE_CHROME_TAGS):
        if tag.find_parent(SECTIONING) is None:
            tag.decompose()
    doomed = []
    for tag in soup.find_all(True):
        attrs = tag.attrs or {}
        role = str(attrs.get("role", "")).strip().lower()
        classes = attrs.get("class") or []
        if (
            role in DROP_ROLES
            or "hidden" in attrs
            or str(attrs.get("aria-hidden", "")).lower() == "true"
            or any(c in DROP_CLASSES for c in classes)
        ):
            doomed.append(tag)
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


def _main_root(soup: Any) -> Any:
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is not None:
        return main
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    return soup.body or soup


class _Walker:
    def __init__(self) -> None:
        self.out = TextBuilder()
        self.stack: list[tuple[int, str]] = []
        self.headings: list[tuple[int, str]] = []

    def walk(self, root: Any) -> None:
        """Write ``root``'s content in document order. Iterative (a stack of child iterators),
        so a page nested thousands of levels deep is read like any other."""
        from bs4 import NavigableString, Tag
        from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

        skipped = (Comment, Declaration, Doctype, ProcessingInstruction)
        stack: list[tuple[Iterator[Any], int]] = [(iter(root.children), 0)]
        while stack:
            children, gap = stack[-1]
            child = next(children, None)
            if child is None:  # this element is done: the break after it
                stack.pop()
                self.out.brk(gap)
                continue
            if isinstance(child, Tag):
                inner_gap = self.element(child)
                if inner_gap is not None:
                    stack.append((iter(child.children), inner_gap))
            elif isinstance(child, NavigableString) and not isinstance(child, skipped):
                self.out.write_inline(str(child))

    def element(self, tag: Any) -> int | None:
        """Write a leaf-like element whole; for a container, write the break before it and
        return the break to write after its children (None: nothing more to walk)."""
        name = tag.name
        if name in HEADINGS:
            self.heading(HEADINGS[name], tag)
        elif name == "pre":
            self.out.brk(2)
            self.out.write(tag.get_text().strip("\n"))
            self.out.brk(2)
        elif name == "br":
            self.out.brk(1)
        elif name == "tr":
            self.out.brk(1)
            self.out.write(
                join_cells([c.get_text(" ") for c in tag.find_all(["td", "th"], recursive=False)])
            )
            self.out.brk(1)
        elif name in PARAGRAPH_BLOCKS or name in LINE_BLOCKS:
            gap = 2 if name in PARAGRAPH_BLOCKS else 1
            self.out.brk(gap)
            return gap
        else:
            return 0
        return None

    def heading(self, level: int, tag: Any) -> None:
        title = collapse_ws(tag.get_text(" ").replace("\N{PILCROW SIGN}", ""))
        self.out.brk(2)
        if title:
            self.headings.append((level, title))
            self.out.mark(push_heading(self.stack, level, title))
            self.out.write(title)
        self.out.brk(2)
