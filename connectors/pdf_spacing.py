"""Word spacing repair for PDF text whose word gaps pypdf missed.

A PDF has no space characters to read where a typesetter moved the pen instead (TJ offsets);
pypdf turns a move into a space when it is wider than half the font's space, and for some
embedded fonts it reads that width wrong, so whole lines come out glued together
("EachlinestartswithaIPaddress"). Neither its plain nor its layout mode recovers them (both use
the same width). This module detects such a document and splits glued runs of letters into
words, by the most probable split (dynamic programming over word costs, as in Norvig's "Natural
Language Corpus Data", ch. 14 of *Beautiful Data*, 2009).

Word costs come from two sources: the document itself (words on its lines that were spaced, so
its own terms, names and language count) and the words of tiktoken's ``cl100k_base`` vocabulary
(tokens that are a space and letters, ranked by merge order: a Zipf prior). A word seen on the
spaced lines is kept; any other run is split where words are likelier than the run as it is. A
split may hold a word neither source knows, at about the cost of random letters, so names stay
whole; rare short words are not offered, and no word may run over a change from a small letter
to a capital ("atIP"). Text that does not look glued is returned unchanged.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from rag.tokens import DEFAULT_ENCODING, get_encoding

_LETTERS = re.compile(r"[^\W\d_]+")
# A capital after a small letter starts a word ("foundatIP"): no word of a split runs over one.
_CASE_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])")

GLUED_MIN_LETTERS = 15  # a run this long is rarely one word in prose (0.1% of English words)
GLUED_SHARE = 0.05  # in a glued document many more runs are (the Debian reference: 14%; German: 2%)
SPACED_LINE_MEAN = 6.5  # a line whose runs average at most this many letters was spaced
MIN_RUN = 3  # "ofa" still splits; shorter runs cannot
MAX_RUN = 160  # two full glued lines; a longer run of letters is no text to split (and costs)
MAX_WORD = 24
MARGIN = 1.0  # nats a split must beat a known word by
# A word of two (three) letters is a piece of a split only when it is this common, in nats
# ("of" 4.3, "ip" 7.4, "bug" 9, "hi" 13): rare short words are how names get cut up ("Av a hi").
COMMON_SHORT = {1: 8.0, 2: 8.0, 3: 10.0}
# A word the vocabulary lacks ("Avahi") may sit in a split at this cost (nats): about that of
# random letters, so a name is kept whole and glued known words are not. A shorter unknown piece
# costs twice as much: that is how a word loses its ending ("mirror ing").
UNKNOWN_BASE, UNKNOWN_PER_LETTER, UNKNOWN_MIN = 12.0, 3.0, 4
# Word endings that are words of their own in both sources (after hyphens), never in a split.
FRAGMENTS = frozenset(["ing", "ings", "ed", "er", "ers", "es", "ly", "tion", "tions", "ment"])
# A long "word" seen once among spaced lines is more likely a glue than a word.
HAPAX_GLUE = 10
DOCUMENT_WEIGHT = 0.9  # the document's own words against the vocabulary prior


def looks_glued(pages: Sequence[str]) -> bool:
    """Whether many letter runs are too long to be words (missing spaces, not long words)."""
    runs = [len(m.group()) for page in pages for m in _LETTERS.finditer(page)]
    if len(runs) < 200:  # too little text to tell
        return False
    return sum(n >= GLUED_MIN_LETTERS for n in runs) / len(runs) > GLUED_SHARE


@lru_cache(maxsize=2)
def _vocabulary_ranks(encoding: str = DEFAULT_ENCODING) -> dict[str, int]:
    """Lower-case words of two or more letters that are one token after a space, by rank."""
    enc = get_encoding(encoding)
    ranks: dict[str, int] = {}
    for token in range(enc.n_vocab):
        try:
            piece = enc.decode_single_token_bytes(token)
        except KeyError:
            continue
        if piece[:1] != b" " or len(piece) < 3:
            continue
        word = piece[1:].decode("utf-8", "ignore")
        if word.isalpha() and len(word) == len(piece) - 1:
            ranks.setdefault(word.lower(), len(ranks))
    return ranks


class Respacer:
    """Word costs for one document, and the splitting of its glued runs."""

    def __init__(self, pages: Sequence[str]) -> None:
        ranks = _vocabulary_ranks()
        norm = math.log(len(ranks) + 1)
        prior = {w: (1 - DOCUMENT_WEIGHT) / ((r + 1) * norm) for w, r in ranks.items()}
        for w in ("a", "i"):  # the one-letter words; "the" is rank 0
            prior[w] = (1 - DOCUMENT_WEIGHT) / (2 * norm)
        counts = self._document_words(pages, prior)
        self.seen = frozenset(counts)
        self._memo: dict[str, str] = {}
        total = sum(counts.values()) or 1
        self.costs = {w: -math.log(p) for w, p in prior.items()}
        for w, c in counts.items():
            self.costs[w] = -math.log(DOCUMENT_WEIGHT * c / total + prior.get(w, 0.0))
        self.pieces = {
            w: c
            for w, c in self.costs.items()
            if c <= COMMON_SHORT.get(len(w), math.inf) and w not in FRAGMENTS
        }
        self.suffixes = {w[i:] for w in self.pieces for i in range(len(w))}

    @staticmethod
    def _document_words(pages: Sequence[str], prior: dict[str, float]) -> Counter[str]:
        """Words of the spaced lines, less glues: a word seen less often than two words it
        splits into seen side by side ("shouldbe" under "should be") slipped in from a line
        that was mostly spaced."""
        counts: Counter[str] = Counter()
        pairs: Counter[str] = Counter()
        for page in pages:
            for line in page.splitlines():
                runs = [w.lower() for w in _LETTERS.findall(line)]
                if runs and sum(map(len, runs)) / len(runs) <= SPACED_LINE_MEAN:
                    counts.update(w for w in runs if len(w) > 1 or w in "ai")
                    pairs.update(a + " " + b for a, b in zip(runs, runs[1:], strict=False))
        for word in list(counts):
            if counts[word] == 1 and len(word) >= HAPAX_GLUE:
                del counts[word]
                continue
            for i in range(1, len(word)):
                glued = pairs.get(word[:i] + " " + word[i:], 0)
                if glued > counts[word]:
                    del counts[word]
                    break
        return counts

    def respace(self, text: str) -> str:
        """``text`` with spaces put into the glued runs of letters."""
        return _LETTERS.sub(self._fix_run, text)

    def _fix_run(self, match: re.Match[str]) -> str:
        run = match.group()
        if not MIN_RUN <= len(run) <= MAX_RUN:
            return run
        # A word of the spaced lines is kept; a run cased like no word ("IPaddress") is no word;
        # a word of the vocabulary alone is split where two or more words are likelier.
        if _word_shaped(run) and run.lower() in self.seen:
            return run
        fixed = self._memo.get(run)
        if fixed is None:
            fixed = self._memo[run] = self.split(run)
        return fixed

    def split(self, run: str) -> str:
        """``run`` split into its most probable words, or unchanged."""
        low, n = run.lower(), len(run)
        costs, suffixes = self.pieces, self.suffixes
        best = [0.0] + [math.inf] * n
        back = [0] * (n + 1)
        breaks = [m.start() for m in _CASE_BREAK.finditer(run)]
        floor, k = 0, 0  # the latest case break before j: no word may start before it
        # an unknown word run[i:j] costs best[i] + BASE + PER_LETTER * (j - i): keep the least
        # best[i] - PER_LETTER * i over the starts allowed, so that case is O(1) per end
        least, least_at = math.inf, 0
        for j in range(1, n + 1):
            while k < len(breaks) and breaks[k] < j:
                floor, k, least = breaks[k], k + 1, math.inf
            i = j - UNKNOWN_MIN
            if i >= floor and best[i] - UNKNOWN_PER_LETTER * i < least:
                least, least_at = best[i] - UNKNOWN_PER_LETTER * i, i
            if least < math.inf:
                best[j] = least + UNKNOWN_BASE + UNKNOWN_PER_LETTER * j
                back[j] = least_at
            # a shorter unknown piece only at twice the price, so that one odd piece ("LAN"
            # after "on") does not leave a whole glued line without any split
            for i in range(max(floor, j - UNKNOWN_MIN + 1), j - 1):  # two letters or more
                cost = best[i] + 2 * _unknown(j - i)
                if cost < best[j]:
                    best[j], back[j] = cost, i
            for i in range(j - 1, max(floor, j - MAX_WORD) - 1, -1):
                piece = low[i:j]
                if piece not in suffixes:  # no known word ends with it: none starts earlier
                    break
                cost = costs.get(piece)
                if cost is not None and best[i] + cost < best[j] and _word_shaped(run[i:j]):
                    best[j], back[j] = best[i] + cost, i
        if best[n] == math.inf:
            return run
        cuts = [n]
        while cuts[-1] > 0:
            cuts.append(back[cuts[-1]])
        whole = self.costs.get(low, math.inf) if _word_shaped(run) else _unknown(n)
        if len(cuts) <= 2 or best[n] + MARGIN >= whole:
            return run
        cuts.reverse()
        return " ".join(run[a:b] for a, b in zip(cuts, cuts[1:], strict=False))


def _unknown(letters: int) -> float:
    return UNKNOWN_BASE + UNKNOWN_PER_LETTER * letters


def _word_shaped(piece: str) -> bool:
    """Cased as a word is: "word", "Word", "WORD" (not "IPaddress", which is two)."""
    return piece.islower() or piece.isupper() or piece.istitle()
