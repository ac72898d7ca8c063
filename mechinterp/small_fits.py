"""Run scikit-learn fits on small matrices with single-threaded BLAS.

Probes, CAVs and ICA in the engine fit hundreds of rows by at most a few thousand columns. Multi-threaded
BLAS only adds synchronisation at that size, and on a busy machine its spinning threads make a
0.1 s logistic regression take seconds (measured 20x on a shared 2-core box), so every fit runs as

    with small_blas():
        LogisticRegression().fit(x, y)
"""
from __future__ import annotations

from functools import cache

from threadpoolctl import ThreadpoolController, threadpool_limits


@cache
def blas_controller() -> ThreadpoolController:
    """The loaded thread pools, found once: threadpool_limits scans the process's libraries on
    every call (about 15 ms, more than a small fit)."""
    return ThreadpoolController()


def small_blas() -> threadpool_limits:
    """Context manager: BLAS (OpenBLAS / MKL) limited to one thread inside the block."""
    return blas_controller().limit(limits=1, user_api="blas")
