"""Low-rank adapters for a BERT-style encoder: train a few matrices, ship them as one ``.npz``.

LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685, 2021)
adds ``scale * B @ A`` to a frozen weight ``W``; only ``A`` (rank x in) and ``B`` (out x rank) are
trained. At inference the product is merged into ``W``, so an adapted model runs exactly as fast
as the base one. Files are numpy archives (no pickle) with their settings beside the arrays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.files import write_atomic

# The linear layers of a Hugging Face BERT layer that the adapter reaches (attention and FFN).
DEFAULT_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense")
ADAPTER_FORMAT = "rag.lora"


@dataclass(frozen=True)
class LoraSettings:
    """How an adapter is shaped: its rank, its scale numerator and the layers it reaches."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = DEFAULT_TARGETS
    first_layer: int = 4  # blocks below it stay frozen: backward stops there (cheaper steps)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def _lora_linear_class() -> Any:
    import torch
    from torch import nn

    class LoraLinear(nn.Module):
        """A frozen ``nn.Linear`` plus a trainable low-rank update (``B`` starts at zero, so the
        adapted model starts as the base model)."""

        def __init__(self, base: nn.Linear, rank: int, scale: float, seed: int) -> None:
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)
            generator = torch.Generator().manual_seed(seed)
            bound = 1.0 / np.sqrt(base.in_features)
            self.lora_a = nn.Parameter(
                (torch.rand(rank, base.in_features, generator=generator) * 2 - 1) * bound
            )
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = scale

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

        def merged(self) -> nn.Linear:
            with torch.no_grad():
                self.base.weight += (self.lora_b @ self.lora_a) * self.scale
            return self.base

    return LoraLinear


def _layer_number(name: str) -> int:
    """N of a module named ``...layer.N....`` (a transformer block), else -1."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layer" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return -1


def _matching(model: Any, settings: LoraSettings) -> list[tuple[str, Any, str]]:
    """``(full name, parent module, attribute)`` of every ``nn.Linear`` whose name ends with one
    of the targets, in blocks from ``first_layer`` on, in a fixed order (so adapters line up
    across processes)."""
    from torch import nn

    found = []
    for name, module in sorted(model.named_modules(), key=lambda item: item[0]):
        if (
            isinstance(module, nn.Linear)
            and _layer_number(name) >= settings.first_layer
            and any(name == t or name.endswith("." + t) for t in settings.targets)
        ):
            parent_name, _, attribute = name.rpartition(".")
            found.append((name, model.get_submodule(parent_name), attribute))
    return found


def add_lora(model: Any, settings: LoraSettings, seed: int = 0) -> list[str]:
    """Freeze ``model`` and wrap its target layers with trainable adapters; their names."""
    lora_linear = _lora_linear_class()
    for p in model.parameters():
        p.requires_grad_(False)
    layers = _matching(model, settings)
    if not layers:
        raise ValueError(f"no linear layer of the model matches {settings.targets}")
    for i, (_, parent, attribute) in enumerate(layers):
        wrapped = lora_linear(getattr(parent, attribute), settings.rank, settings.scale, seed + i)
        setattr(parent, attribute, wrapped)
    return [name for name, _, _ in layers]


def _adapters(model: Any) -> dict[str, Any]:
    return {
        name: module
        for name, module in model.named_modules()
        if hasattr(module, "lora_a") and hasattr(module, "merged")
    }


def lora_arrays(model: Any) -> dict[str, np.ndarray]:
    """The adapter matrices, by layer name (``NAME.a``, ``NAME.b``), as float32 arrays."""
    out: dict[str, np.ndarray] = {}
    for name, module in _adapters(model).items():
        out[f"{name}.a"] = module.lora_a.detach().cpu().numpy().astype(np.float32)
        out[f"{name}.b"] = module.lora_b.detach().cpu().numpy().astype(np.float32)
    return out


def set_lora_arrays(model: Any, arrays: dict[str, np.ndarray]) -> None:
    """Load adapter matrices saved by :func:`lora_arrays` into a model wrapped by ``add_lora``."""
    import torch

    adapters = _adapters(model)
    missing = sorted({k.rsplit(".", 1)[0] for k in arrays} ^ set(adapters))
    if missing:
        raise ValueError(f"adapter layers do not match the model: {missing[:4]}")
    with torch.no_grad():
        for name, module in adapters.items():
            module.lora_a.copy_(torch.from_numpy(arrays[f"{name}.a"]))
            module.lora_b.copy_(torch.from_numpy(arrays[f"{name}.b"]))


def merge_lora(model: Any) -> None:
    """Fold every adapter into its base weight and put the plain ``nn.Linear`` back."""
    for name, module in _adapters(model).items():
        parent_name, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attribute, module.merged())


def save_adapter(
    path: str | Path, model: Any, settings: LoraSettings, info: dict[str, Any]
) -> Path:
    """Write the adapter of ``model`` (float16 to halve the file) and its settings to ``path``."""
    import io

    arrays = {k: v.astype(np.float16) for k, v in lora_arrays(model).items()}
    meta = {"format": ADAPTER_FORMAT, "settings": asdict(settings), **info}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())
    return path


def read_adapter(path: str | Path) -> tuple[LoraSettings, dict[str, Any], dict[str, np.ndarray]]:
    """An adapter file's settings, its recorded info and its matrices (float32)."""
    with np.load(Path(path), allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
        arrays = {k: archive[k].astype(np.float32) for k in archive.files if k != "__meta__"}
    if meta.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"{path} is not a {ADAPTER_FORMAT} adapter file")
    raw = meta.pop("settings")
    settings = LoraSettings(
        int(raw["rank"]), float(raw["alpha"]), tuple(raw["targets"]), int(raw.get("first_layer", 0))
    )
    return settings, meta, arrays
