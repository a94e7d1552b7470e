"""Wall-clock timing shared by the benchmark scripts (imports neither NumPy nor torch)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after ``warmup``
    (at least one) warm-up calls (lazy imports, allocator, caches), and the first call's
    result."""
    out = fn()
    for _ in range(warmup - 1):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out


def alternating_median_ms(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median milliseconds of each function, called in turn ``repeats`` times after one warm-up
    call each, so that load on a shared machine hits every side alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [1000 * statistics.median(t) for t in times]
