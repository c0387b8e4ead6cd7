"""Splitting text into paragraphs, sentences and words, with exact character offsets.

Every splitter takes ``(text, start, end)`` and returns ``(start, end)`` pairs that index into
``text`` itself: offsets are recorded while splitting, never recovered with ``str.find``. The
pieces are ordered, do not overlap, carry no leading or trailing whitespace, and together hold
every non-whitespace character of ``text[start:end]``. Whitespace means ``str.isspace`` (the
same set as the ``\\s`` of ``re``).

The sentence splitter is a small rule-based one in the spirit of Punkt (Kiss & Strunk, 2006,
"Unsupervised Multilingual Sentence Boundary Detection", Computational Linguistics 32(4)), with
a hand-written abbreviation list in place of Punkt's learned one.
"""

from __future__ import annotations

import re
from itertools import pairwise

Piece = tuple[int, int]

# A sentence may end after ., !, ?, an ellipsis (or their fullwidth/CJK forms), possibly
# followed by closing quotes or brackets, and then whitespace or the end of the region. Decimals
# ("3.14") and dotted abbreviations ("e.g.") never match in the middle, since no space follows.
_SENTENCE_END = re.compile(
    r"(?=[.!?\u2026\u203c\u2047-\u2049\u3002\uff01\uff1f\uff61])"  # lets re skip ahead fast
    r"(?:[.!?\u2026\u203c\u2047-\u2049]+[\"'\u201d\u2019\u00bb)\]}]*(?=\s|$)"
    r"|[\u3002\uff01\uff1f\uff61]+[\"'\u201d\u2019\u300d\u300f\uff09)\]]*)"
)
# A blank line ends a paragraph (and a sentence); a single newline is usually a hard wrap.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
# A new line that opens a list item or a Markdown heading starts a new sentence.
_LINE_OPENER = re.compile(r"\n(?=[^\S\n]*(?:[-*+\u2022][^\S\n]|\d{1,3}[.)][^\S\n]|#{1,6}\s))")
_WORD = re.compile(r"\S+")
_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S, e.g, i.e, U.S.A
_OPENERS = "\"'([{\u201c\u2018\u00ab"

# Abbreviations after which a period never ends a sentence (lower case, without the final '.').
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "mssrs",
        "messrs",
        "dr",
        "prof",
        "rev",
        "hon",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "st",
        "mt",
        "fr",
        "e.g",
        "i.e",
        "cf",
        "vs",
        "viz",
        "ca",
        "approx",
        "fig",
        "figs",
        "eq",
        "eqs",
        "ref",
        "refs",
        "sec",
        "secs",
        "ch",
        "chap",
        "tab",
        "vol",
        "vols",
        "pp",
        "p",
        "ed",
        "eds",
        "al",
        "ph.d",
        "op",
        "cit",
        "ibid",
        "esp",
        "dept",
        "univ",
        "est",
        "min",
        "max",
        "avg",
        "incl",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
# Abbreviations that may also end a sentence: the period ends one when an upper-case letter
# follows ("... and so on, etc. The next" but "etc. and", "et al. (2019)", "No. 5").
MAYBE_FINAL_ABBREVIATIONS = frozenset(
    ["etc", "al", "inc", "ltd", "co", "corp", "jr", "sr", "no", "nos"]
)

_LOOKBEHIND = 40  # characters to look back for the word before a period; abbreviations are short


def split_at(text: str, cuts: list[int], start: int, end: int) -> list[Piece]:
    """The pieces of ``text[start:end]`` between consecutive ``cuts`` (sorted positions), stripped
    of whitespace, empty ones dropped."""
    pieces: list[Piece] = []
    bounds = [start, *cuts, end]
    for a, b in pairwise(bounds):
        if a >= b:
            continue
        segment = text[a:b]
        stripped = segment.lstrip()
        if not stripped:
            continue
        a += len(segment) - len(stripped)
        b = a + len(stripped.rstrip())
        pieces.append((a, b))
    return pieces


def _next_visible(text: str, pos: int, end: int) -> str:
    """The first non-whitespace character at or after ``pos`` (before ``end``), or ''."""
    while pos < end:
        ch = text[pos]
        if not ch.isspace():
            return ch
        pos += 1
    return ""


def _word_before(text: str, pos: int, start: int) -> str:
    """The whitespace-delimited word ending at ``pos``, without opening quotes or brackets."""
    window = text[max(start, pos - _LOOKBEHIND) : pos]
    if not window or window[-1].isspace():
        return ""
    return window.split()[-1].lstrip(_OPENERS)


def _ends_sentence(text: str, match: re.Match[str], start: int, end: int) -> bool:
    following = _next_visible(text, match.end(), end)
    if not following:
        return True
    if following.islower():  # sentences rarely start in lower case: '"Oh!" cried she'
        return False
    if match.group() != ".":  # '!', '?', '...', or a period inside quotes: a real end
        return True
    word = _word_before(text, match.start(), start).lower()
    if not word:
        return True
    if word in ABBREVIATIONS or _INITIALISM.fullmatch(word) or len(word) == 1 and word.isalpha():
        return False
    if word in MAYBE_FINAL_ABBREVIATIONS:
        return following.isupper()
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Piece]:
    """Sentences of ``text[start:end]`` as ``(start, end)`` offsets into ``text``.

    A sentence ends at ., ! or ? (also ellipses and CJK full stops, with any closing quotes or
    brackets) followed by whitespace, unless the next word starts in lower case or the period
    closes a known abbreviation ("e.g.", "Fig.", "et al.", "Mr.") or an initial ("J. Austen").
    A blank line always ends a sentence; a single newline does not (hard-wrapped text), except
    before a list item or a Markdown heading.
    """
    end = len(text) if end is None else end
    cuts = [m.start() for m in _BLANK_LINE.finditer(text, start, end)]
    cuts += [m.start() for m in _LINE_OPENER.finditer(text, start, end)]
    cuts += [
        m.end()
        for m in _SENTENCE_END.finditer(text, start, end)
        if _ends_sentence(text, m, start, end)
    ]
    cuts.sort()
    return split_at(text, cuts, start, end)


def split_paragraphs(text: str, start: int = 0, end: int | None = None) -> list[Piece]:
    """Paragraphs of ``text[start:end]``: runs of text separated by blank lines."""
    end = len(text) if end is None else end
    cuts = [m.start() for m in _BLANK_LINE.finditer(text, start, end)]
    return split_at(text, cuts, start, end)


def split_words(text: str, start: int = 0, end: int | None = None) -> list[Piece]:
    """Whitespace-separated words of ``text[start:end]``."""
    end = len(text) if end is None else end
    return [m.span() for m in _WORD.finditer(text, start, end)]
