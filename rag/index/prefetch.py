"""Parsing beside embedding: the caller's thread reads files while a worker thread chunks,
embeds and stores what was read before.

An ingest alternates between parsing (Python: pypdf, lxml, the connectors) and embedding (torch,
which releases the GIL while it computes), so running them in two threads lets them overlap
instead of taking turns. Parsing stays in the calling thread on purpose: the connectors' time
limit (:func:`connectors.limits.time_limit`) interrupts a runaway parser with SIGALRM, which only
the main thread receives. The queue between the two is bounded (``depth`` documents), so memory
stays a few documents ahead. An error on either side stops the other and is raised to the
caller: a parser's where it happened, the ingest's as it was.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_DEPTH = 8
_POLL = 0.1  # seconds between checks that the consumer is still running while the queue is full


def consume_beside(
    consume: Callable[[Iterator[T]], R], items: Iterable[T], depth: int = DEFAULT_DEPTH
) -> R:
    """``consume(items)``, with ``items`` produced in this thread and consumed in another, up
    to ``depth`` ahead (0: both in this thread, one after the other)."""
    if depth <= 0:
        return consume(iter(items))
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    outcome: dict[str, Any] = {}

    def fed() -> Iterator[T]:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return

    def run() -> None:
        try:
            outcome["value"] = consume(fed())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="rag-ingest", daemon=True)
    worker.start()

    def put(message: tuple[str, Any]) -> bool:
        while worker.is_alive():
            try:
                slots.put(message, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False  # the consumer stopped (its error is in ``outcome``)

    try:
        for item in items:
            if not put(("item", item)):
                break
        put(("done", None))
    except BaseException as exc:  # a parser's error or Ctrl-C: stop the consumer, then raise
        put(("error", exc))
        worker.join()
        raise
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
