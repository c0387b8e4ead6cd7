"""Plain data types that flow through the pipeline (the bottom layer: imports nothing of rag).

sources --connectors--> Document --chunking--> Chunk --encoders/stores--> Hit
    --generation--> Generation (+ a TokenStep per token) --answering--> Answer (+ Candidates)

=====================  ==================================================================
:mod:`.documents`      Span, Document, IngestError, Chunk, SourceScore, Hit
:mod:`.generation`     TokenStep, Generation: a generated text and its token distributions
:mod:`.answers`        Citation, Candidate, Answer: what an answering strategy returns
=====================  ==================================================================
"""

from __future__ import annotations

from rag.types.answers import Answer, Candidate, Citation
from rag.types.documents import Chunk, Document, Hit, IngestError, SourceScore, Span, sha256_hex
from rag.types.generation import Generation, TokenStep

__all__ = [
    "Answer",
    "Candidate",
    "Chunk",
    "Citation",
    "Document",
    "Generation",
    "Hit",
    "IngestError",
    "SourceScore",
    "Span",
    "TokenStep",
    "sha256_hex",
]
