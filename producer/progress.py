"""A plain-text progress bar on stderr (no dependency), only on a terminal.

On a terminal it redraws one line (``\\r``) at most ten times a second. Elsewhere (a pipe, a
log file, CI) it draws nothing: the command's own summary line (``voicecall import``'s counts,
``exported N jobs``) is the one line written. A rate is shown only once a phase has run for
half a second: a first reading over a few microseconds says nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
RATE_AFTER_S = 0.5  # no rows/s before this: over a few microseconds it is noise


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.phase = ""
        self.started = self.last = time.monotonic()
        self.done = 0
        self.total: int | None = None
        self.open_line = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not (self.enabled and self.tty):
            return  # not a terminal: the command writes its own summary line
        now = time.monotonic()
        if phase != self.phase:
            self.finish()
            self.phase, self.started, self.last = phase, now, now
        self.done, self.total = done, total
        if now - self.last < 0.1 and not (total is not None and done >= total):
            return
        self.last = now
        self.stream.write("\r" + self._bar(now).ljust(78))
        self.stream.flush()
        self.open_line = True

    def _rate(self, now: float) -> str:
        elapsed = now - self.started
        return f" {self.done / elapsed:,.0f} rows/s" if elapsed >= RATE_AFTER_S else ""

    def _bar(self, now: float) -> str:
        if self.total:
            filled = int(WIDTH * min(self.done / self.total, 1.0))
            bar = "#" * filled + "." * (WIDTH - filled)
            share = f"{self.done / self.total:4.0%}"
            return f"{self.phase:<10} [{bar}] {share} {self.done}/{self.total}{self._rate(now)}"
        return f"{self.phase:<10} {self.done} rows{self._rate(now)}"

    def finish(self) -> None:
        """End the current line, before anything else is written or when a phase is over."""
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False
