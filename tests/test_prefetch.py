"""Parsing beside embedding (``rag.index.prefetch``): same result, errors from either side
raised, the parser kept in the calling thread (the connectors' SIGALRM time limit needs it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rag.index.prefetch import consume_beside


def test_every_item_arrives_in_order_and_the_result_comes_back() -> None:
    seen: list[str] = []

    def items() -> Iterator[int]:
        for i in range(100):
            seen.append(threading.current_thread().name)
            yield i

    assert consume_beside(lambda it: list(it), items(), depth=3) == list(range(100))
    assert set(seen) == {threading.main_thread().name}  # produced in the caller's thread


def test_a_producer_error_is_raised_and_stops_the_consumer() -> None:
    consumed: list[int] = []

    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("parser broke")

    def consume(it: Iterator[int]) -> None:
        for i in it:
            consumed.append(i)

    with pytest.raises(RuntimeError, match="parser broke"):
        consume_beside(consume, items(), depth=2)
    assert consumed == [1, 2]


def test_a_consumer_error_is_raised_and_stops_the_producer() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    def consume(it: Iterator[int]) -> None:
        for i in it:
            if i == 5:
                raise ValueError("store full")

    with pytest.raises(ValueError, match="store full"):
        consume_beside(consume, items(), depth=4)
    assert len(produced) < 100  # the producer stopped soon after, not at the end


def test_depth_zero_runs_in_turn() -> None:
    threads: list[str] = []

    def consume(it: Iterator[int]) -> int:
        threads.append(threading.current_thread().name)
        return sum(it)

    assert consume_beside(consume, iter(range(5)), depth=0) == 10
    assert threads == [threading.main_thread().name]
