"""A plain-text progress bar on stderr (no dependency).

On a terminal it redraws one line (``\\r``) at most ten times a second; otherwise (a log file,
CI) it writes a line every 10 % or every five seconds, whichever comes first.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.phase = ""
        self.started = self.last = time.monotonic()
        self.last_fraction = 0.0
        self.open_line = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if phase != self.phase:
            self.finish()
            self.phase, self.started, self.last, self.last_fraction = phase, now, now, 0.0
        fraction = done / total if total else 0.0
        final = total is not None and done >= total
        if self.tty:
            if now - self.last < 0.1 and not final:
                return
        elif not (final or now - self.last >= 5 or fraction - self.last_fraction >= 0.1):
            return
        self.last, self.last_fraction = now, fraction
        self._draw(done, total, now)

    def _draw(self, done: int, total: int | None, now: float) -> None:
        rate = done / max(now - self.started, 1e-6)
        if total:
            filled = int(WIDTH * min(done / total, 1.0))
            bar = "#" * filled + "." * (WIDTH - filled)
            text = f"{self.phase:<10} [{bar}] {done / total:4.0%} {done}/{total} {rate:,.0f} rows/s"
        else:
            text = f"{self.phase:<10} {done} rows {rate:,.0f} rows/s"
        if self.tty:
            self.stream.write("\r" + text.ljust(78))
            self.open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the current line (call when a phase is over)."""
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = False
