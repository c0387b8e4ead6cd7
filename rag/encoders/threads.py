"""How many CPU cores a compute call can use without fighting other work for them.

A fixed thread count equal to the core count is the worst choice on a busy machine: when another
process already keeps a core busy, two intra-op threads on two cores make a one-query embedding
many times slower than one thread (measured in issue 11: 7-35x). We take the cores this process
may run on, minus the load the rest of the machine puts on them.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def free_cores(*, own_threads: int = 0) -> int:
    """Usable cores minus the machine's one-minute load average (at least 1).

    ``own_threads`` is work of this process already counted in the load that the caller is about
    to replace (so a second call from the same busy process does not shrink itself to 1).
    ``RAG_THREADS`` overrides the estimate.
    """
    forced = os.environ.get("RAG_THREADS", "").strip()
    if forced:
        return max(1, int(forced))
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    busy_elsewhere = max(0.0, load - own_threads)
    return max(1, min(cores, round(cores - busy_elsewhere + 0.25)))
