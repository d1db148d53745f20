"""Plain-text progress bars on stderr for the long stages of the ``xpcs`` command.

On a terminal the bar is redrawn in place (carriage return) at most every 0.1 s; when stderr
is a file or a pipe (logs, CI) one line is written at each tenth of the work, so a log does
not fill with redraws. No dependency beyond the standard library.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30


class Progress:
    """A counter of ``total`` units of work shown as a bar named ``label``.

    ``enabled=False`` makes every method a no-op (quiet runs, tests). Use it as a context
    manager, or call :meth:`close` at the end (which writes the final line).
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "frames",
        enabled: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.total = max(0, int(total))
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._closed = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error the bar stops where it was: the error line must stay the last word.
        if exc[0] is None:
            self.close()
        elif self._tty and self.enabled and not self._closed:
            self.stream.write("\n")
            self._closed = True

    def _line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = round(_WIDTH * fraction)
        elapsed = time.perf_counter() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        tail = f"{elapsed:5.1f} s" if self.done >= self.total else f"eta {eta:5.1f} s"
        return (
            f"{self.label:<12} [{'#' * filled}{'.' * (_WIDTH - filled)}] {100 * fraction:5.1f}% "
            f"{self.done}/{self.total} {self.unit} {tail}"
        )

    def update(self, n: int) -> None:
        """Add ``n`` units of finished work."""
        if not self.enabled or self._closed:
            return
        self.done = min(self.total, self.done + int(n))
        now = time.perf_counter()
        if self._tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self.stream.write("\r" + self._line())
                self.stream.flush()
                self._last_draw = now
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if tenth > self._last_tenth and tenth < 10:
            self._last_tenth = tenth
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Write the final state (once)."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        self.stream.write(("\r" if self._tty else "") + self._line() + "\n")
        self.stream.flush()
