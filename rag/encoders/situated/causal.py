"""SitEmb's own models: a causal (decoder-only) embedder, last-token pooling, two vectors per pass.

SitEmb-v1.5 (Wu et al., arXiv:2508.01959) is a LoRA on Qwen3-Embedding-8B trained on the
sequence ``chunk <end> instruction context <end>``. Causal attention means the state at the first
``<end>`` has seen only the chunk (the chunk-only vector ``c``) and the state at the second has
seen the chunk in its context (the situated vector ``s``): one forward pass gives both, and
they are scored ``sim(q, s) + 0.5 * sim(q, c)``. Queries read
``"Instruct: {task}\\nQuery: {query}<end>"`` (the Qwen3-Embedding convention).

Running the real weights (a GPU with ~20 GB for bf16; nothing here downloads at run time)::

    # once, on a machine with internet (peft lets transformers load the LoRA folder directly)
    huggingface-cli download Qwen/Qwen3-Embedding-8B --local-dir /models/Qwen3-Embedding-8B
    huggingface-cli download SituatedEmbedding/SitEmb-v1.5-Qwen3 --local-dir /models/SitEmb-v1.5
    pip install peft

    from rag.encoders.situated import CausalSitEmbModel, get_situated
    model = CausalSitEmbModel("/models/SitEmb-v1.5", tokenizer="/models/Qwen3-Embedding-8B",
                              device="cuda", dtype="bfloat16")
    situated = get_situated("sitemb", model)       # -> CausalSitEmbEncoder
    vectors = situated.embed_chunks(chunks)        # .situated and .chunk from one pass

If the adapter's ``adapter_config.json`` names a base model that is not where transformers can
find it offline, merge once (``PeftModel.from_pretrained(base, adapter).merge_and_unload()`` and
``save_pretrained``) and point ``CausalSitEmbModel`` at the merged folder. From the command line:
``rag eval DATA --encoder sitemb:/models/SitEmb-v1.5 --situated sitemb --residual 0.5``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Encoder
from rag.encoders.situated.base import (
    ChunkBatch,
    SituatedEncoder,
    SituatedVectors,
    as_vectors,
    l2_normalise,
)
from rag.encoders.situated.sitemb import SITEMB_INSTRUCTION, context_text
from rag.types import Chunk

DEFAULT_TASK = "Given a search query, retrieve relevant passages that answer the query"
DEFAULT_MAX_LENGTH = 8192
END_TOKEN_CANDIDATES = ("<|endoftext|>",)


def query_text(query: str, task: str = DEFAULT_TASK) -> str:
    return f"Instruct: {task}\nQuery: {query}"


def _tokenizer_location(location: str) -> str:
    """A LoRA folder usually ships no tokenizer: use its base model's (``adapter_config.json``)."""
    folder = Path(location)
    has_tokenizer = (folder / "tokenizer.json").exists() or (
        folder / "tokenizer_config.json"
    ).exists()
    adapter = folder / "adapter_config.json"
    if folder.is_dir() and not has_tokenizer and adapter.exists():
        base = json.loads(adapter.read_text("utf-8")).get("base_model_name_or_path")
        if base:
            return str(base)
    return location


class CausalSitEmbModel(Encoder):
    """A causal embedding model with last-token pooling, loaded with transformers.

    ``tokenizer``: where its tokenizer lives (default: the model folder, or for a LoRA folder
    the base model it names). ``end_token``: the token whose state is pooled (default
    ``<|endoftext|>`` when the vocabulary has it, else the tokenizer's EOS). ``max_length``
    caps every input (default: the tokenizer's limit, at most 8192). ``dtype``: ``"auto"``
    picks bfloat16 on CUDA and float32 elsewhere.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        *,
        tokenizer: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        task: str = DEFAULT_TASK,
        instruction: str = SITEMB_INSTRUCTION,
        end_token: str | None = None,
        max_length: int | None = None,
        name: str | None = None,
    ) -> None:
        from rag.encoders.sentence_transformers import resolve_model_location
        from rag.offline import apply_offline_env

        apply_offline_env()
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise ImportError(
                "SitEmb models need torch and transformers: pip install 'situated-rag[st]'"
            ) from exc
        self.location = resolve_model_location(model_name_or_path)
        tokenizer_location = resolve_model_location(tokenizer or _tokenizer_location(self.location))
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_location)
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.model = AutoModel.from_pretrained(self.location, dtype=torch_dtype).to(device)
        self.model.eval()
        self.device = device
        self.task = task
        self.instruction = instruction
        vocab = self.tokenizer.get_vocab()
        end = end_token or next((t for t in END_TOKEN_CANDIDATES if t in vocab), None)
        end = end or self.tokenizer.eos_token
        if end is None or end not in vocab:
            raise ValueError(f"end token {end!r} is not in the tokenizer's vocabulary")
        self.end_token = end
        self.end_id = int(vocab[end])
        limit = int(getattr(self.tokenizer, "model_max_length", DEFAULT_MAX_LENGTH) or 0)
        self.max_length = int(max_length or min(limit or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH))
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")
        self.name = name or Path(self.location).name
        self.dim = int(self.model.config.hidden_size)

    # -- token helpers -----------------------------------------------------------------------------

    def ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(int(s), int(e)) for s, e in enc["offset_mapping"]]

    def single_ids(self, text: str) -> list[int]:
        """``text <end>``, cut to ``max_length``."""
        return [*self.ids(text)[: self.max_length - 1], self.end_id]

    def pair_ids(self, chunk: Chunk) -> tuple[list[int], int]:
        """``chunk <end> instruction \\n context <end>`` and the position of the first ``<end>``.

        The chunk is kept whole (cut only when it alone is over ``max_length``); the context
        is cut around the chunk to the tokens that remain.
        """
        chunk_ids = self.ids(chunk.text)[: self.max_length - 2]
        lead = [*chunk_ids, self.end_id]
        instruction_ids = self.ids(self.instruction + "\n")
        budget = self.max_length - len(lead) - len(instruction_ids) - 1
        context = context_text(chunk, max(budget - 2, 0), self.token_spans)
        context_ids = self.ids(context)[: max(budget, 0)] if context else []
        if not context_ids:
            return lead, len(chunk_ids)
        return [*lead, *instruction_ids, *context_ids, self.end_id], len(chunk_ids)

    # -- forward -------------------------------------------------------------------------------------

    def states_at(
        self,
        sequences: Sequence[Sequence[int]],
        positions: Sequence[Sequence[int]],
        *,
        batch_size: int,
        show_progress: bool = False,
    ) -> list[np.ndarray]:
        """For each sequence, the last hidden states at its ``positions`` (``(len, dim)``),
        batched by length with right padding (causal attention: padding after a token never
        changes its state)."""
        import torch

        out: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)] * len(sequences)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if show_progress:
            import sys

            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="sitemb", unit="batch", file=sys.stderr)
        pad_id = self.tokenizer.pad_token_id
        pad_id = self.end_id if pad_id is None else pad_id
        with torch.inference_mode():
            for batch in batches:
                width = max(len(sequences[i]) for i in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(sequences[i])] = torch.tensor(list(sequences[i]))
                    mask[row, : len(sequences[i])] = 1
                states = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state
                for row, i in enumerate(batch):
                    picked = states[row, list(positions[i])].float().cpu().numpy()
                    out[i] = picked
        return out

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        if role not in ("query", "document"):
            raise ValueError(f"role must be 'query' or 'document', got {role!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        shaped = [query_text(t, self.task) if role == "query" else t for t in texts]
        sequences = [self.single_ids(t) for t in shaped]
        states = self.states_at(
            sequences,
            [[len(s) - 1] for s in sequences],
            batch_size=batch_size,
            show_progress=show_progress,
        )
        return l2_normalise(np.stack([s[0] for s in states]))


class CausalSitEmbEncoder(SituatedEncoder):
    """``sitemb`` on a :class:`CausalSitEmbModel`: one pass per chunk gives the situated vector
    and the chunk-only vector (always returned, at no extra cost)."""

    mode = "sitemb"

    def __init__(self, base: CausalSitEmbModel) -> None:
        if not isinstance(base, CausalSitEmbModel):
            raise TypeError("CausalSitEmbEncoder needs a CausalSitEmbModel")
        self.base = base

    def options(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "model": self.base.location,
            "max_length": self.base.max_length,
            "task": self.base.task,
            "instruction": self.base.instruction,
            "end_token": self.base.end_token,
        }

    def situated_vectors(self, batch: ChunkBatch) -> SituatedVectors:
        chunks = batch.chunks
        if not chunks:
            empty = as_vectors(np.zeros((0, self.dim)), self.dim)
            return SituatedVectors(empty, empty)
        pairs = [self.base.pair_ids(c) for c in chunks]
        states = self.base.states_at(
            [ids for ids, _ in pairs],
            [[end, len(ids) - 1] for ids, end in pairs],
            batch_size=batch.batch_size,
            show_progress=batch.show_progress,
        )
        both = np.stack(states)  # (n, 2, dim): state at the first <end>, at the last <end>
        return SituatedVectors(l2_normalise(both[:, 1]), l2_normalise(both[:, 0]))
