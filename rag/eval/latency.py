"""Query latency: time answering single queries one at a time, and summarise as percentiles.

Latency is measured per query (``retrieve(query, k)``), as an application issues them, after a
few warm-up queries (first calls pay for lazy loading and allocator growth). Percentiles use
numpy's default linear interpolation.

Calls are timed in one worker thread, as a server's request handler runs them, and the same way
for every system compared. On an oversubscribed machine torch's OpenMP team in the *main*
thread can stall a single-query encode by ~0.5 s (measured here: MiniLM, one query, 460 ms in
the main thread vs 19 ms in a worker thread under a load of 7 on 2 cores), which would swamp
every other difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """``{"p50_ms", "p95_ms", "mean_ms"}`` of durations given in seconds."""
    if not seconds:
        raise ValueError("no timings to summarise")
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
    }


def time_calls(
    call: Callable[[Any], object],
    inputs: Sequence[Any],
    *,
    warmup: int = 3,
    in_thread: bool = True,
) -> list[float]:
    """Seconds taken by ``call(x)`` for each of ``inputs``, after ``warmup`` untimed calls
    (on the first inputs, repeated); in one worker thread unless ``in_thread=False``."""

    def timed() -> list[float]:
        for x in list(inputs[:warmup]):
            call(x)
        out: list[float] = []
        for x in inputs:
            t0 = time.perf_counter()
            call(x)
            out.append(time.perf_counter() - t0)
        return out

    if not in_thread:
        return timed()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-latency") as pool:
        return pool.submit(timed).result()


def measure(
    call: Callable[[Any], object], inputs: Sequence[Any], *, warmup: int = 3
) -> dict[str, float]:
    """Percentiles (ms) of ``call`` over ``inputs``; ``n`` says how many were timed."""
    result: dict[str, float] = percentiles_ms(time_calls(call, inputs, warmup=warmup))
    result["n"] = len(inputs)
    return result


def measure_interleaved(
    calls: Mapping[str, Callable[[Any], object]],
    inputs: Sequence[Any],
    *,
    warmup: int = 3,
    in_thread: bool = True,
) -> dict[str, dict[str, float]]:
    """Percentiles (ms) per system, timing the systems in turn on each input (the order rotated
    per input), so that a change of machine load hits every system alike."""
    names = list(calls)

    def timed() -> dict[str, list[float]]:
        for x in list(inputs[:warmup]):
            for name in names:
                calls[name](x)
        out: dict[str, list[float]] = {name: [] for name in names}
        for i, x in enumerate(inputs):
            shift = i % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                calls[name](x)
                out[name].append(time.perf_counter() - t0)
        return out

    if in_thread:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-latency") as pool:
            seconds = pool.submit(timed).result()
    else:
        seconds = timed()
    return {
        name: {**percentiles_ms(values), "n": len(values)}
        for name, values in seconds.items()
        if values
    }
