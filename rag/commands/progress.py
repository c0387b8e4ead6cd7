"""The one progress bar of ``rag ingest``: files done of the total, an ETA, chunks per second.

Encoders are called with their own bars off (``Index.ingest`` embeds without them), so nothing
is nested inside this bar; ``--no-progress`` means no bar at all.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class FileBar:
    """A tqdm bar over ``total`` files (None: unknown) whose postfix is the chunk rate."""

    def __init__(self, total: int | None, *, enabled: bool = True) -> None:
        self.start = time.perf_counter()
        self.chunks = 0
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc="ingest", unit="file", file=sys.stderr, dynamic_ncols=True
            )

    def file_done(self, _path: str) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def chunks_done(self, count: int) -> None:
        self.chunks += count
        if self.bar is not None:
            elapsed = time.perf_counter() - self.start
            self.bar.set_postfix_str(per_second(self.chunks, elapsed, "chunks"), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def per_second(count: int, seconds: float, unit: str) -> str:
    """``count / seconds`` with enough digits that a real run never reads ``0.0 files/s``."""
    rate = count / seconds if seconds > 0 else 0.0
    if rate == 0 or rate >= 10:
        return f"{rate:.0f} {unit}/s"
    if rate >= 0.1:
        return f"{rate:.2f} {unit}/s"
    return f"{rate:.2g} {unit}/s"
