"""``trained``: late chunking through a model whose low-rank adapter was trained to read context.

The adapter (:mod:`rag.tuning`) was trained with a contrastive loss whose negatives are the
other chunks of the same window (InSeNT, Conti et al., arXiv:2505.24782) and chunks of other
documents, on inverse-cloze pairs from corpus text and judged train queries (SitEmb, Wu et al.,
arXiv:2508.01959, trains its situated encoders the same way in spirit: a chunk's vector is
conditioned on its context). It is merged into a private copy of the base model's weights, so
encoding costs what ``late`` costs; queries go through the same adapted model.

``adapter`` is a file path or the name of one shipped in ``rag/encoders/situated/adapters``
(default: the base encoder's name, e.g. ``minilm``). The adapter file records the
``context_weight`` it was trained with (late chunking's ``l2(s + beta * w)``, ``w`` the window
pooled whole); it is the default here, so a chunk is read as it was in training. Windows are
:data:`TRAINED_WINDOW_TOKENS` long unless the adapter file says otherwise (``window_tokens``).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.encoders.situated.late import LateChunkingEncoder

if TYPE_CHECKING:
    from rag.base import Encoder

ADAPTER_DIR = Path(__file__).with_name("adapters")
# Tokens per late-chunking window, unless the adapter file names its own: on SciFact's *train*
# queries 128 beat 256 and 512 (nDCG@10 0.6868 / 0.6702 / 0.6636; BENCHMARKS.md, "Trained
# situated encoder"): MiniLM reads a chunk best beside its title and its nearest text.
TRAINED_WINDOW_TOKENS = 128


def shipped_adapters() -> list[str]:
    return sorted(p.stem for p in ADAPTER_DIR.glob("*.npz"))


def adapter_path(adapter: str | Path) -> Path:
    """The adapter file: a path that exists, else a shipped adapter of that name."""
    path = Path(adapter)
    if path.suffix == ".npz" and path.is_file():
        return path
    shipped = ADAPTER_DIR / f"{adapter}.npz"
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"no situated adapter {str(adapter)!r}: not a file, and the shipped adapters are "
        f"{', '.join(shipped_adapters()) or 'none'} (train one with `rag tune`)"
    )


def adapted_encoder(base: Encoder, path: Path) -> Encoder:
    """A copy of ``base`` (a sentence-transformers encoder) whose model has the adapter at
    ``path`` merged into its weights; the shared base model is left as it was."""
    from rag.encoders.lora import add_lora, merge_lora, read_adapter, set_lora_arrays

    settings, info, arrays = read_adapter(path)
    if info.get("base") not in (None, base.name):
        raise ValueError(
            f"adapter {path} was trained for encoder {info['base']!r}, not {base.name!r}"
        )
    model = getattr(base, "model", None)
    if model is None or not hasattr(model[0], "auto_model"):
        raise ValueError(f"encoder {base.name!r} has no transformer to adapt (use minilm, mpnet)")
    adapted = copy.copy(base)
    adapted.model = copy.deepcopy(model)  # type: ignore[attr-defined]
    auto_model = adapted.model[0].auto_model  # type: ignore[attr-defined]
    add_lora(auto_model, settings)
    set_lora_arrays(auto_model, arrays)
    merge_lora(auto_model)
    auto_model.eval()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    if hasattr(adapted, "location"):  # its own lock: calls on the base model do not wait for it
        adapted.location = f"{adapted.location}#adapter-{digest}"  # type: ignore[attr-defined]
    adapted._adapter_digest = digest  # type: ignore[attr-defined]
    if hasattr(adapted, "_backend_checked"):  # choose a backend for the adapted weights anew
        adapted._backend_checked = False  # type: ignore[attr-defined]
        adapted._runner = None  # type: ignore[attr-defined]
        adapted._mode = "torch"  # type: ignore[attr-defined]
    return adapted


class TrainedLateEncoder(LateChunkingEncoder):
    """Late chunking over the adapted model (see the module docstring)."""

    mode = "trained"

    def __init__(self, base: Encoder, *, adapter: str | Path | None = None, **late: Any) -> None:
        from rag.encoders.lora import read_adapter

        self.adapter_file = adapter_path(adapter if adapter is not None else base.name)
        _, info, _ = read_adapter(self.adapter_file)
        late.setdefault("context_weight", float(info.get("context_weight", 0.0)))
        late.setdefault("window_tokens", int(info.get("window_tokens", TRAINED_WINDOW_TOKENS)))
        super().__init__(adapted_encoder(base, self.adapter_file), **late)

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "adapter": self.adapter_file.stem,
            "adapter_sha256": self.base._adapter_digest,  # type: ignore[attr-defined]
        }
