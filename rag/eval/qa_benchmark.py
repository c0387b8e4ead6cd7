"""Answer-quality benchmark: vanilla LLM, vanilla RAG per encoder, Mixture-Embedding RAG,
Confident RAG per metric (full and fast), on a short-answer QA set in the BEIR layout plus
``answers.jsonl`` (``{"_id", "answer"}``, the answer a string or a list of strings).

Every corpus record becomes one chunk (title kept apart, embedded as ``title + text``), indexed
in memory by each encoder. Per question the benchmark generates, greedily:

* the closed-book answer (``vanilla-llm``),
* one answer per encoder from its top-``k`` (``vanilla-rag:ENCODER``),
* one answer from the fused hits (``mixture``),
* fast mode's call per distinct winner: one batch of ``prefix_tokens``-token prefixes, one
  per encoder, then the winner finished from its cache
  (:meth:`~rag.generation.base.Generator.best_prefix`).

Confident RAG's candidates are exactly the vanilla-RAG answers (same prompts, greedy decoding),
so ``confident:METRIC`` keeps the candidate with the best score and costs the sum of their
generation times (generated one after another; a backend that batches can do better). Fast mode
(``confident-fast:METRIC``) costs the measured ``best_prefix`` call that finishes its winner
(metrics that pick the same winner share one call).
Identical prompts (encoders that retrieved the same passages in the same order) are generated
once and their measured time is charged to every run that uses them.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rag.answering.prompts import PromptTemplate
from rag.eval.qa import auroc, best_over_golds
from rag.eval.qa_data import QADataset, build_retrievers, embed_text, load_answers, load_qa_dataset
from rag.generation.base import Generator, Prompt
from rag.types import Generation, Hit


@dataclass
class QAConfig:
    encoders: list[str]
    metrics: list[str] = field(
        default_factory=lambda: ["avg_logprob", "gini", "entropy", "perplexity", "self_certainty"]
    )
    k: int = 3
    max_new_tokens: int = 32
    prefix_tokens: int = 8
    fusion: str = "mixture"
    fusion_candidates: int = 20
    fast: bool = True
    template: PromptTemplate = field(default_factory=PromptTemplate)


@dataclass
class _Timed:
    generation: Generation
    seconds: float


def _key(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(list(prompt), sort_keys=True)


class _Runner:
    """Generates each distinct prompt once per question and remembers what it cost."""

    def __init__(self, generator: Generator, config: QAConfig) -> None:
        self.generator = generator
        self.config = config
        self.cache: dict[str, _Timed] = {}

    def one(self, prompt: Prompt) -> _Timed:
        key = _key(prompt)
        if key not in self.cache:
            started = time.perf_counter()
            gen = self.generator.generate(
                prompt, max_new_tokens=self.config.max_new_tokens, stop=self.config.template.stop
            )
            self.cache[key] = _Timed(gen, time.perf_counter() - started)
        return self.cache[key]

    def best_prefix(
        self, prompts: Sequence[Prompt], pick: Callable[[list[Generation]], int]
    ) -> tuple[list[Generation], Generation, float]:
        """Fast mode's call: the prefixes of ``prompts`` (identical prompts decoded once), the
        answer of the prompt ``pick`` chooses finished, and the seconds the call took."""
        keys = [_key(p) for p in prompts]
        unique = list(dict.fromkeys(keys))
        slot = {key: i for i, key in enumerate(unique)}
        first = {key: p for key, p in zip(reversed(keys), reversed(prompts), strict=True)}
        picked: list[int] = []

        def choose(gens: list[Generation]) -> int:
            picked.append(pick([gens[slot[k]] for k in keys]))
            return slot[keys[picked[0]]]

        started = time.perf_counter()
        choice = self.generator.best_prefix(
            [first[k] for k in unique],
            choose,
            prefix_tokens=self.config.prefix_tokens,
            max_new_tokens=self.config.max_new_tokens,
            stop=self.config.template.stop,
        )
        seconds = time.perf_counter() - started
        assert choice.final is not None
        return [choice.prefixes[slot[k]] for k in keys], choice.final, seconds


def _scores(gen: Generation) -> dict[str, float]:
    from rag.confidence import score_all

    return score_all(gen) if gen.steps else {}


def _score(scores: dict[str, float], metric: str) -> float:
    return scores.get(metric, -math.inf)


def _record(text: str, golds: Sequence[str], seconds: float, **extra: Any) -> dict[str, Any]:
    correct, f1 = best_over_golds(text, golds)
    return {"text": text, "correct": correct, "f1": f1, "seconds": seconds, **extra}


def evaluate_question(
    question: str,
    golds: Sequence[str],
    generator: Generator,
    retrievers: dict[str, Any],
    fusion: Any,
    config: QAConfig,
) -> dict[str, dict[str, Any]]:
    """Every run's answer to one question: ``{run name: {text, correct, f1, seconds, ...}}``."""
    template = config.template
    runner = _Runner(generator, config)
    out: dict[str, dict[str, Any]] = {}

    llm = runner.one(template.build(question))
    out["vanilla-llm"] = _record(
        llm.generation.text.strip(),
        golds,
        llm.seconds,
        scores=_scores(llm.generation),
        **_usage(llm),
    )

    hits: dict[str, list[Hit]] = {}
    retrieval: dict[str, float] = {}
    for name, retriever in retrievers.items():
        started = time.perf_counter()
        hits[name] = retriever.retrieve(question, config.k)
        retrieval[name] = time.perf_counter() - started
    prompts = {name: template.build(question, h) for name, h in hits.items()}
    cands: dict[str, _Timed] = {}
    for name, prompt in prompts.items():
        cands[name] = runner.one(prompt)
        c = cands[name]
        out[f"vanilla-rag:{name}"] = _record(
            c.generation.text.strip(),
            golds,
            retrieval[name] + c.seconds,
            scores=_scores(c.generation),
            docs=[h.chunk.doc_id for h in hits[name]],
            steps=_step_table(c.generation),
            **_usage(c),
        )

    started = time.perf_counter()
    fused = fusion.retrieve(question, config.k)
    fused_seconds = time.perf_counter() - started
    mix = runner.one(template.build(question, fused))
    out["mixture"] = _record(
        mix.generation.text.strip(),
        golds,
        fused_seconds + mix.seconds,
        scores=_scores(mix.generation),
        docs=[h.chunk.doc_id for h in fused],
        **_usage(mix),
    )

    names = list(retrievers)
    cand_scores = {n: _scores(cands[n].generation) for n in names}
    distinct = {_key(prompts[n]): cands[n] for n in names}
    full_seconds = sum(retrieval.values()) + sum(t.seconds for t in distinct.values())
    full_usage = _sum_usage(distinct.values())
    for metric in config.metrics:
        w = names[int(np.argmax([_score(cand_scores[n], metric) for n in names]))]
        out[f"confident:{metric}"] = _record(
            cands[w].generation.text.strip(),
            golds,
            full_seconds,
            winner=w,
            confidence=_score(cand_scores[w], metric),
            scores=cand_scores[w],
            **full_usage,
        )

    if config.fast:
        # One best_prefix call per distinct winner: each call is exactly what fast mode does
        # for the metrics that pick that encoder (prefix batch, then the winner finished).
        n_prefix = min(config.prefix_tokens, config.max_new_tokens)
        calls: dict[str, tuple[list[Generation], Generation, float]] = {}
        prefix: dict[str, Generation] = {}
        prefix_scores: dict[str, dict[str, float]] = {}
        for metric in config.metrics:

            def pick(gens: list[Generation], metric: str = metric) -> int:
                return int(np.argmax([_score(_scores(g), metric) for g in gens]))

            if prefix:  # the prefixes are known: skip the call when this winner was finished
                w = names[pick([prefix[n] for n in names])]
            if not prefix or w not in calls:
                gens, final, seconds = runner.best_prefix([prompts[n] for n in names], pick)
                if not prefix:
                    prefix = dict(zip(names, gens, strict=True))
                    prefix_scores = {n: _scores(prefix[n]) for n in names}
                w = names[pick([prefix[n] for n in names])]
                calls[w] = (gens, final, seconds)
            _, final, seconds = calls[w]
            usage = _sum_usage({_key(prompts[n]): _Timed(prefix[n], 0.0) for n in names}.values())
            finished = prefix[w].finish_reason != "length" or n_prefix == config.max_new_tokens
            if not finished:  # the continuation's tokens beyond the prefix
                usage["completion_tokens"] += final.completion_tokens - n_prefix
            out[f"confident-fast:{metric}"] = _record(
                final.text.strip(),
                golds,
                sum(retrieval.values()) + seconds,
                winner=w,
                confidence=_score(prefix_scores[w], metric),
                scores=prefix_scores[w],
                finished_in_prefix=finished,
                **usage,
            )
        out["_prefix"] = {n: {"text": prefix[n].text, "scores": prefix_scores[n]} for n in names}
    return out


def _step_table(gen: Generation) -> list[list[float | None]]:
    """Per generated token: log-prob, entropy, sum of squares, KL(U || p) -- enough to re-score
    any prefix offline (greedy decoding makes a prefix run's tokens the full run's first ones)."""
    return [[s.logprob, s.entropy, s.sum_sq, s.kl_uniform] for s in gen.steps]


def _usage(timed: _Timed) -> dict[str, int]:
    return {
        "prompt_tokens": int(timed.generation.prompt_tokens or 0),
        "completion_tokens": timed.generation.completion_tokens,
        "generations": 1,
    }


def _sum_usage(items: Any) -> dict[str, int]:
    total = {"prompt_tokens": 0, "completion_tokens": 0, "generations": 0}
    for item in items:
        for key, value in _usage(item).items():
            total[key] += value
    return total


def summarise(records: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run: accuracy, F1, AUROC (the run's metric; every metric in
    ``auroc_by_metric``), seconds and tokens per question."""
    names = [n for n in records[0]["runs"] if not n.startswith("_")]
    rows = []
    for name in names:
        per_q = [r["runs"][name] for r in records]
        labels = [bool(p["correct"]) for p in per_q]
        by_metric: dict[str, float] = {}
        for metric in metrics:
            scores = [_run_score(p, metric) for p in per_q]
            if not any(math.isnan(s) for s in scores):  # an empty answer ranks lowest (-inf)
                by_metric[metric] = auroc(scores, labels)
        own = name.split(":", 1)[1] if name.startswith("confident") else "self_certainty"
        n = len(per_q)
        rows.append(
            {
                "name": name,
                "accuracy": sum(labels) / n,
                "f1": sum(p["f1"] for p in per_q) / n,
                "auroc": by_metric.get(own, float("nan")),
                "auroc_metric": own,
                "auroc_by_metric": by_metric,
                "seconds_per_question": sum(p["seconds"] for p in per_q) / n,
                "prompt_tokens_per_question": sum(p["prompt_tokens"] for p in per_q) / n,
                "completion_tokens_per_question": sum(p["completion_tokens"] for p in per_q) / n,
                "generations_per_question": sum(p["generations"] for p in per_q) / n,
                "questions": n,
            }
        )
    return rows


def _run_score(record: dict[str, Any], metric: str) -> float:
    """A run's confidence in its answer under ``metric`` (for Confident RAG: the chosen
    candidate's score, on its prefix in fast mode); ``-inf`` for an empty answer."""
    return _score(record["scores"], metric)


def run_benchmark(
    dataset: QADataset,
    generator: Generator,
    retrievers: dict[str, Any],
    config: QAConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Answer every question of ``dataset`` with every run; returns ``{"runs": [...], ...}``."""
    from rag.retrieval.multi import FusionRetriever

    fusion = FusionRetriever(
        list(retrievers.values()), config.fusion, candidates=config.fusion_candidates
    )
    started = time.perf_counter()
    # load the model outside the timed questions (the first call loads it)
    generator.generate(config.template.build("Warm up."), max_new_tokens=1)
    load_seconds = time.perf_counter() - started
    records = []
    started = time.perf_counter()
    for i, (qid, question) in enumerate(dataset.questions.items(), start=1):
        golds = dataset.answers[qid]
        runs = evaluate_question(question, golds, generator, retrievers, fusion, config)
        records.append({"id": qid, "question": question, "gold": golds, "runs": runs})
        if progress is not None:
            done = {n: r["correct"] for n, r in runs.items() if not n.startswith("_")}
            hits = sum(done.values())
            progress(
                f"[{i}/{len(dataset.questions)}] {time.perf_counter() - started:.0f}s "
                f"{hits}/{len(done)} runs correct"
            )
    seconds = time.perf_counter() - started
    rows = summarise(records, config.metrics)
    settings = asdict(config)
    settings["template"] = asdict(config.template)
    return {
        "dataset": dataset.name,
        "model": generator.name,
        "questions": len(records),
        "wall_seconds": seconds,
        "load_seconds": load_seconds,
        "config": settings,
        "runs": rows,
        "records": records,
    }


def print_table(result: dict[str, Any], file: Any = None) -> None:
    file = file or sys.stdout
    print(
        f"{result['dataset']}: {result['questions']} questions, model {result['model']}, "
        f"{result['wall_seconds']:.0f}s",
        file=file,
    )
    print(
        f"{'run':<30} {'acc':>6} {'F1':>6} {'AUROC':>6} {'s/q':>7} {'prompt':>7} {'gen':>6}",
        file=file,
    )
    for row in result["runs"]:
        print(
            f"{row['name']:<30} {row['accuracy']:6.3f} {row['f1']:6.3f} {row['auroc']:6.3f} "
            f"{row['seconds_per_question']:7.2f} {row['prompt_tokens_per_question']:7.0f} "
            f"{row['completion_tokens_per_question']:6.1f}",
            file=file,
        )


__all__ = [
    "QAConfig",
    "QADataset",
    "build_retrievers",
    "embed_text",
    "evaluate_question",
    "load_answers",
    "load_qa_dataset",
    "print_table",
    "run_benchmark",
    "summarise",
]
