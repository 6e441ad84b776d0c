"""Progress reporting for long index builds: a bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("vsql")

# Builds shorter than this finish before a bar would help, so nothing is drawn for them.
BAR_DELAY_SECONDS = 2.0


class Progress:
    """Callable ``progress(done, total)`` that draws a bar on stderr after a delay."""

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.drawn = False
        self.last_log = self.started

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        if elapsed < BAR_DELAY_SECONDS:
            return
        if self.stream.isatty():
            width = 30
            filled = int(width * done / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done:,}/{total:,} rows {elapsed:5.1f} s")
            self.stream.flush()
            self.drawn = True
        elif time.perf_counter() - self.last_log >= 5.0:
            self.last_log = time.perf_counter()
            log.info("%s: %d of %d rows after %.1f s", self.label, done, total, elapsed)

    def finish(self, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        if self.drawn:
            self.stream.write(f"\r{self.label} [{'#' * 30}] {total:,}/{total:,} rows {elapsed:5.1f} s\n")
            self.stream.flush()
        log.info("%s: %d rows in %.2f s", self.label, total, elapsed)
