"""Wall-clock timing shared by the benchmark scripts (imports neither NumPy nor torch)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after one warm-up
    call (lazy imports, allocator, caches), and the warm-up call's result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), out
