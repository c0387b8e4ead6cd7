"""Seconds per question of the answering strategies as a user calls them: vanilla RAG per
encoder, Confident RAG full (candidates decoded in one batch) and fast (prefixes in one batch,
the winner continued from its cache), timed in turn for every question so that load changes on a
shared machine hit every strategy alike. Prints s/question and the ratio to mean vanilla RAG.

Usage: python benchmarks/strategy_cost.py [N_QUESTIONS] [DATASET_DIR]
(defaults: 20, ../shared/data/hotpotqa_dev100; SmolLM2, k = 3, 24 new tokens, 8-token prefixes)
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.offline import apply_offline_env

apply_offline_env()
from rag.answering import ConfidentRAG, VanillaRAG
from rag.eval.qa_benchmark import build_retrievers, load_qa_dataset
from rag.generation import get_generator

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
root = (
    Path(sys.argv[2])
    if len(sys.argv) > 2
    else Path(__file__).parents[2] / "shared/data/hotpotqa_dev100"
)
dataset = load_qa_dataset(root)
encoders = ["minilm", "bm25", "wordllama"]
retrievers = build_retrievers(dataset.chunks, encoders, label=f"{dataset.name}/qa")
llm = get_generator("transformers")
llm.generate("Warm up.", max_new_tokens=1)  # load the model outside the timings
options = {"k": 3, "max_new_tokens": 24}
strategies = {f"vanilla:{e}": VanillaRAG(llm, retrievers[e], **options) for e in encoders}
every = [retrievers[e] for e in encoders]
strategies["confident-full"] = ConfidentRAG(llm, every, mode="full", **options)
strategies["confident-fast"] = ConfidentRAG(llm, every, mode="fast", prefix_tokens=8, **options)

seconds: dict[str, list[float]] = {name: [] for name in strategies}
for question in list(dataset.questions.values())[:n]:
    for name, strategy in strategies.items():
        started = time.perf_counter()
        strategy.answer(question)
        seconds[name].append(time.perf_counter() - started)

vanilla = np.mean([np.mean(seconds[f"vanilla:{e}"]) for e in encoders])
print(f"{n} questions of {dataset.name}, model {llm.name}")
for name, times in seconds.items():
    print(f"{name:<16} {np.mean(times):6.2f} s/question  x{np.mean(times) / vanilla:.2f}")
