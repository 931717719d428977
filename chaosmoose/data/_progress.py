"""The progress bar of ``chaosmoose data``: redrawn in place on a terminal, plain lines
(every 10 % or 30 s) otherwise, always on stderr so stdout keeps only the result."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from chaosmoose.data.plan import MIB, format_size

__all__: list[str] = []  # not an activity module


class Bar:
    """Call it with the generator's ``progress`` events; ``close()`` when done."""

    def __init__(self, what: str, stream: TextIO | None = None, tty: bool | None = None,
                 width: int = 30) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self.drawn = 0.0
        self.step = -1
        self.logged = time.monotonic()
        self.last: dict[str, Any] | None = None

    def line(self, event: dict[str, Any]) -> str:
        """One status line for ``event``."""
        done, total = event.get("bytes", 0), event.get("bytes_total", 0)
        entries, count = event.get("done", 0), event.get("total", 0)
        share = done / total if total else (entries / count if count else 1.0)
        share = min(1.0, share)
        elapsed = event.get("elapsed") or 0
        rate = f"{done / MIB / elapsed:.1f} MiB/s" if elapsed else "-"
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        return (f"{self.what} [{bar}] {share * 100:3.0f}%  {entries}/{count} entries  "
                f"{format_size(done)} of {format_size(total)}  {rate}")

    def __call__(self, event: dict[str, Any]) -> None:
        self.last = event
        now = time.monotonic()
        if self.tty:
            if now - self.drawn >= 0.1:
                self.stream.write("\r" + self.line(event) + "\x1b[K")
                self.stream.flush()
                self.drawn = now
            return
        total = event.get("bytes_total") or 0
        step = int(10 * event.get("bytes", 0) / total) if total else 10
        if step > self.step or now - self.logged >= 30:
            self.step, self.logged = step, now
            self.stream.write(self.line(event) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draw the last state and end the line (on a terminal)."""
        if self.tty and self.last is not None:
            self.stream.write("\r" + self.line(self.last) + "\x1b[K\n")
            self.stream.flush()
