"""Where tokens start in a text: map tiktoken's token stream back to character offsets.

A text is encoded once; each token's byte length comes from a per-encoding table, so the byte
offset of every token is a cumulative sum, and a byte offset becomes a character offset by
counting the UTF-8 lead bytes before it. A token that starts inside a multi-byte character
(tiktoken splits rare characters across byte-level tokens) maps to the next character boundary,
so every mapped offset is a valid place to cut a Python string.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import accumulate

import numpy as np

from rag.tokens import DEFAULT_ENCODING, get_encoding


@lru_cache(maxsize=4)
def token_byte_lengths(encoding: str = DEFAULT_ENCODING) -> np.ndarray:
    """The number of UTF-8 bytes of every token id of ``encoding`` (0 for unused ids)."""
    enc = get_encoding(encoding)
    lengths = np.zeros(enc.n_vocab, dtype=np.int64)
    for token in range(enc.n_vocab):
        try:
            lengths[token] = len(enc.decode_single_token_bytes(token))
        except KeyError:  # gaps in the id space (special tokens sit above the ordinary ones)
            continue
    return lengths


@lru_cache(maxsize=4)
def _byte_length_list(encoding: str) -> list[int]:
    return token_byte_lengths(encoding).tolist()


def char_offsets_of_bytes(text: str, byte_offsets: np.ndarray) -> np.ndarray:
    """Character offsets in ``text`` of UTF-8 ``byte_offsets``, rounded up to a character start."""
    data = text.encode("utf-8")
    if len(data) == len(text):  # ASCII: bytes and characters coincide
        return byte_offsets
    lead = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80
    # leads_before[b] = number of characters that start before byte b
    leads_before = np.concatenate(([0], np.cumsum(lead)))
    return leads_before[byte_offsets]


def token_starts(text: str, encoding: str = DEFAULT_ENCODING, offset: int = 0) -> list[int]:
    """Character offset at which each token of ``text`` starts, plus ``offset`` (non-decreasing,
    the first is ``offset``).

    ``text`` is encoded once, with special tokens treated as ordinary text (as
    ``rag.tokens.count_tokens`` does).
    """
    if not text:
        return []
    tokens = get_encoding(encoding).encode_ordinary(text)
    if text.isascii():  # bytes are characters: a running sum of the tokens' lengths
        return list(
            accumulate(map(_byte_length_list(encoding).__getitem__, tokens[:-1]), initial=offset)
        )
    lengths = token_byte_lengths(encoding)[np.asarray(tokens, dtype=np.int64)]
    byte_starts = np.zeros(len(tokens), dtype=np.int64)
    np.cumsum(lengths[:-1], out=byte_starts[1:])
    return (char_offsets_of_bytes(text, byte_starts) + offset).tolist()


def prefix_chars(text: str, tokens: list[int], keep: int, encoding: str = DEFAULT_ENCODING) -> int:
    """How many characters of ``text`` the first ``keep`` of its ``tokens`` cover, rounded down
    to a whole character."""
    n_bytes = int(token_byte_lengths(encoding)[np.asarray(tokens[:keep], dtype=np.int64)].sum())
    return len(text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore"))
