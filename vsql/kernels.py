"""Loading of the numba kernels behind each index method, with a message while they compile.

numba compiles the kernels on first use and caches the machine code on disk (``cache=True``), so
only a process that finds no cache pays for it: about 20 s to 2 minutes on two cores. A process
that has to wait more than a second prints one line on stderr saying why it is waiting.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time

log = logging.getLogger("vsql")

_MODULES = {"hnsw": ("udfs.hnsw",), "ivfflat": ("udfs.ivf",), "ivfpq": ("udfs.ivf", "udfs.pq")}
_ready: set[str] = set()
_lock = threading.Lock()
NOTICE_AFTER_SECONDS = 1.0


def ensure_compiled(method: str) -> None:
    """Compile (or load from the cache) the kernels of ``method`` once per process."""
    with _lock:
        if method in _ready:
            return
        done = threading.Event()
        notice = threading.Timer(NOTICE_AFTER_SECONDS, _announce, args=(method, done))
        notice.daemon = True
        notice.start()
        started = time.perf_counter()
        try:
            for name in ("udfs.metrics",) + _MODULES[method]:
                importlib.import_module(name).warm_up()
        finally:
            done.set()
            notice.cancel()
        elapsed = time.perf_counter() - started
        if elapsed > NOTICE_AFTER_SECONDS:
            print(f"vsql: {method} kernels ready after {elapsed:.1f} s (cached for later runs)", file=sys.stderr)
        log.debug("%s kernels ready in %.2f s", method, elapsed)
        _ready.add(method)


def _announce(method: str, done: threading.Event) -> None:
    if not done.is_set():
        print(
            f"vsql: compiling the {method} kernels (first run only; numba caches them)...", file=sys.stderr, flush=True
        )
