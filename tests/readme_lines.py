"""Printed lines compared with the README's copies, up to the last digit of their scores.

Scores come out of float arithmetic whose last bits follow the CPU, the backend (bf16 on CPUs
that have it) and the thread count, so a README line written on one machine may print 0.694
where it says 0.695 on another. Words, paths, ranks and the order of hits must match exactly.
"""

from __future__ import annotations

import math
import re

NUMBER = re.compile(r"-?\d+\.\d+")


def same_up_to_rounding(line: str, want: str, tolerance: float = 0.011) -> bool:
    """``line`` equals ``want`` except that decimals may differ by ``tolerance`` (relative for
    numbers above 1)."""
    if NUMBER.sub("#", line) != NUMBER.sub("#", want):
        return False
    got, expected = NUMBER.findall(line), NUMBER.findall(want)
    return all(
        math.isclose(float(a), float(b), rel_tol=tolerance / 10, abs_tol=tolerance)
        for a, b in zip(got, expected, strict=True)
    )
