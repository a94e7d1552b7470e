"""The command line shared by the benchmark scripts, parsed before NumPy loads.

Every script takes ``--quick`` (fewer cases or repeats, nothing written), ``--threads`` (BLAS,
torch and OpenCV threads for both sides) and, where it repeats timings, ``--repeats``. BLAS reads
its thread count when NumPy is first imported, so this module imports neither.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable


def parse_bench_args(doc: str | None, *, repeats: int | None = None, threads: int | None = None,
                     extra: Callable[[argparse.ArgumentParser], None] | None = None
                     ) -> argparse.Namespace:
    """Parse the script's arguments and set the BLAS thread variables from ``--threads``.

    ``threads`` is the default thread count (all cores this process may use when None);
    ``extra(parser)`` adds script-specific options.
    """
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run that writes nothing")
    ap.add_argument("--threads", type=int,
                    default=threads if threads is not None else len(os.sched_getaffinity(0)))
    if repeats is not None:
        ap.add_argument("--repeats", type=int, default=repeats)
    if extra is not None:
        extra(ap)
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    return args
