"""Token counting with tiktoken's ``cl100k_base``, offline.

tiktoken downloads its encoding files on first use; ``llama-index-core`` ships ``cl100k_base``
and ``o200k_base`` in ``llama_index/core/_static/tiktoken_cache``, so we point
``TIKTOKEN_CACHE_DIR`` there (unless the user already set it) before the first ``get_encoding``.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

DEFAULT_ENCODING = "cl100k_base"


def packaged_tiktoken_cache() -> Path | None:
    """The tiktoken cache folder that ships inside llama-index-core, found without importing it."""
    spec = importlib.util.find_spec("llama_index")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "core" / "_static" / "tiktoken_cache"
        if folder.is_dir():
            return folder
    return None


@lru_cache(maxsize=4)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    import tiktoken

    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        cache = packaged_tiktoken_cache()
        if cache is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken raises plain requests/OSError errors when offline
        raise RuntimeError(
            f"tiktoken encoding {name!r} is not available offline. Install llama-index-core "
            "(it ships cl100k_base and o200k_base) or set TIKTOKEN_CACHE_DIR to a folder that "
            f"holds the encoding file. Cause: {exc}"
        ) from exc


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
