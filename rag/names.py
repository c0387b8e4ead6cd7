"""The names a user types (encoders, chunkers, stores, situated modes, fusions, metrics), and
one way to refuse a wrong one: ``unknown 'minlm' ...; did you mean 'minilm'?``.

Imports nothing but the standard library, so the CLI parser can list the choices in its help
without loading a backend; tests/test_cli_names.py checks these tuples against the registries.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

ENCODERS = ("minilm", "mpnet", "wordllama", "e5", "bm25")
CHUNKERS = ("recursive", "sentence", "token")
STORES = ("chroma", "memory", "pgvector")
SITUATED = ("plain", "prefix", "sitemb", "late", "contextual", "trained")
FUSION_METHODS = (
    "rrf",
    "combsum-minmax",
    "combsum-zscore",
    "combsum-dbsf",
    "combmnz-minmax",
    "combmnz-zscore",
    "combmnz-dbsf",
    "mixture",
    "mixture-sum",
    "relative_score",
    "dist_based_score",
)
FUSION_STATS = ("candidates", "background", "calibration", "corpus")
METRICS = ("self_certainty", "avg_logprob", "gini", "entropy", "perplexity")
STRATEGIES = ("confident", "mixture", "vanilla", "llm")


class UnknownNameError(ValueError):
    """A name that is not one of the choices; ``choices`` and ``suggestion`` for callers."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], extra: str = "") -> None:
        self.kind, self.name, self.choices = kind, name, sorted(set(choices))
        self.suggestion = suggest(name, self.choices)
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        super().__init__(
            f"unknown {kind} {name!r}{hint} (choose one of: {', '.join(self.choices)}{extra})"
        )


class UnknownKeyError(UnknownNameError, KeyError):
    """An unknown name where callers catch KeyError (a lookup such as an index's encoder)."""

    def __str__(self) -> str:  # KeyError's own would quote the whole message
        return str(self.args[0])


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``name`` when it is a near miss (a typo), else ``None``."""
    found = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def check_name(kind: str, name: str, choices: Iterable[str], extra: str = "") -> str:
    """``name`` when it is one of ``choices``, else :class:`UnknownNameError`."""
    choices = list(choices)
    if name not in choices:
        raise UnknownNameError(kind, name, choices, extra)
    return name


def listed(choices: Iterable[str]) -> str:
    """Choices as help text shows them: ``a | b | c``."""
    return " | ".join(choices)
