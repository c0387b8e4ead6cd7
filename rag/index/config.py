"""What an index folder is built with (``index.json``), and whether a request matches it.

An existing index keeps its chunking and its store: vectors and term statistics were made from
those chunks, so a different chunker (or chunker option) or store cannot apply to them. Asking
for one raises :class:`IndexConfigError`, naming the stored and the requested setting; rebuild
the index (``rebuild=True``) or open another folder to change them. Encoders can be added.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from rag.names import UnknownKeyError, check_name

FORMAT_VERSION = 2
# Format 1 kept BM25 as one index rebuilt from the docstore (bm25/NAME); format 2 keeps every
# encoder in a store, lexical ones under lexical/NAME. A format-1 folder is migrated on open.
READABLE_FORMATS = (1, 2)
StoreKind = Literal["chroma", "memory", "pgvector"]
STORE_KINDS: tuple[str, ...] = ("chroma", "memory", "pgvector")
Kind = Literal["dense", "lexical"]


class IndexConfigError(ValueError):
    """A request that does not match how an existing index was built.

    ``problem`` says what differs (stored and requested setting); ``str()`` adds how to fix it
    from Python; a command line states its own remedy after ``problem``.
    """

    remedy = "Rebuild it (Index(..., rebuild=True)) or use another path."

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}. {self.remedy}")
        self.problem = problem


@dataclass
class EncoderEntry:
    """An encoder configured on an index; ``situated`` names how chunks are turned into text.

    ``kind`` comes from the encoder registry when not given (``"dense"`` for any model folder).
    ``residual`` (a dense encoder with a situated mode other than plain): its store ranks chunks
    by ``sim(q, s) + residual * sim(q, c)`` (:func:`rag.index.residual.residual_store_vectors`).
    """

    name: str
    kind: Kind | None = None
    situated: str = "plain"
    residual: float | None = None  # absent in older index.json files: read as None
    # the trained mode's late-chunking window, pinned when the entry is made, so that a later
    # default never mixes two window lengths in one index (absent in older files: see from_json)
    window_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.window_tokens is None and self.situated.partition(":")[0] == "trained":
            from rag.encoders.situated.trained import TRAINED_WINDOW_TOKENS

            self.window_tokens = TRAINED_WINDOW_TOKENS
        if self.kind is None:
            from rag.encoders.registry import encoder_kind

            self.kind = encoder_kind(self.name)
        if self.kind not in ("dense", "lexical"):
            raise ValueError(f"encoder kind must be 'dense' or 'lexical', got {self.kind!r}")
        if self.residual is not None:
            from rag.encoders.situated.residual import check_alpha

            self.residual = check_alpha(self.residual)
            if self.kind != "dense" or self.situated == "plain":
                raise ValueError(
                    f"encoder {self.name!r}: residual={self.residual:g} needs a dense encoder "
                    f"with a situated mode other than plain (kind={self.kind!r}, "
                    f"situated={self.situated!r}); the residual of plain is the plain vector"
                )


@dataclass
class IndexConfig:
    encoders: list[EncoderEntry] = field(default_factory=lambda: [EncoderEntry("minilm")])
    store: StoreKind = "chroma"
    chunker: str = "recursive"
    chunker_options: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        check_name("store", self.store, STORE_KINDS)
        self.encoders = [
            e if isinstance(e, EncoderEntry) else EncoderEntry(e) for e in self.encoders
        ]
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names):
            raise ValueError(f"encoder names must be unique, got {names}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for entry in data["encoders"]:  # only trained entries have a window to pin
            if entry.get("window_tokens") is None:
                entry.pop("window_tokens", None)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexConfig:
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(
                f"index format {data.get('format')!r} is not supported "
                f"(this version reads {', '.join(map(str, READABLE_FORMATS))})"
            )
        encoders = [EncoderEntry(**_pinned(e)) for e in data["encoders"]]
        return cls(**{**data, "encoders": encoders})

    def entry(self, name: str) -> EncoderEntry:
        for entry in self.encoders:
            if entry.name == name:
                return entry
        raise UnknownKeyError("encoder of this index", name, self.names())

    def names(self) -> list[str]:
        return [e.name for e in self.encoders]


def _pinned(entry: dict[str, Any]) -> dict[str, Any]:
    """An encoder entry as read: a trained entry written before windows were pinned was built
    with the late-chunking default of then, 512 tokens."""
    if str(entry.get("situated", "")).startswith("trained") and "window_tokens" not in entry:
        return {**entry, "window_tokens": 512}
    return entry


def chunker_settings(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every setting of the chunker ``name`` built with ``options`` (defaults filled in), so
    ``{}`` and the defaults spelled out compare equal."""
    from rag.chunking import get_chunker

    chunker = get_chunker(name, **options)
    return {f.name: getattr(chunker, f.name) for f in fields(chunker)}  # type: ignore[arg-type]


def merge_config(stored: IndexConfig, requested: IndexConfig, where: str) -> IndexConfig:
    """``stored`` plus the encoders ``requested`` adds; any other difference is an error."""
    if requested.store != stored.store:
        raise IndexConfigError(
            f"the index at {where} uses store {stored.store!r}; {requested.store!r} was "
            "requested (its vectors live in the stored one)"
        )
    have = chunker_settings(stored.chunker, stored.chunker_options)
    want = chunker_settings(requested.chunker, requested.chunker_options)
    if (stored.chunker, have) != (requested.chunker, want):
        changed = {
            k: (have.get(k), want.get(k)) for k in sorted(have | want) if have.get(k) != want.get(k)
        }
        raise IndexConfigError(
            f"the index at {where} was chunked with {stored.chunker!r} {stored.chunker_options}; "
            f"{requested.chunker!r} {requested.chunker_options} was requested"
            + (f" (differs in {changed})" if changed else "")
            + "; its chunks were cut that way"
        )
    merged = IndexConfig(
        encoders=list(stored.encoders),
        store=stored.store,
        chunker=stored.chunker,
        chunker_options=dict(stored.chunker_options),
        format=stored.format,
    )
    known = {e.name: e for e in merged.encoders}
    for entry in requested.encoders:
        have_entry = known.get(entry.name)
        if have_entry is None:
            merged.encoders.append(entry)
        elif (have_entry.kind, have_entry.situated) != (entry.kind, entry.situated):
            raise IndexConfigError(
                f"encoder {entry.name!r} in the index at {where} embeds chunks with "
                f"situated={have_entry.situated!r}; situated={entry.situated!r} was "
                "requested"
            )
        elif have_entry.residual != entry.residual:
            raise IndexConfigError(
                f"encoder {entry.name!r} in the index at {where} stores chunk vectors with "
                f"residual={have_entry.residual!r}; residual={entry.residual!r} was requested"
            )
    return merged
