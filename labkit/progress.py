"""Show that a long wait is still making progress.

Starting a broker or downloading jars takes seconds to minutes. A silent pause looks like a
hang, so every wait in labkit prints a status line: rewritten in place on a terminal, and at a
calmer pace (one line every few seconds) in a notebook or a CI log, where ``\\r`` does not work.
"""

from __future__ import annotations

import sys
import time
from typing import Callable


def _interactive() -> bool:
    return sys.stdout.isatty()


class Ticker:
    """Prints a status line at most every ``every`` seconds (every 0.2 s on a terminal)."""

    def __init__(self, label: str, every: float = 5.0):
        self.label = label
        self.every = 0.2 if _interactive() else every
        self.started = time.monotonic()
        self._last_print = 0.0
        self._printed = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def due(self) -> bool:
        """Whether the next :meth:`update` would print (to compute a rate only when needed)."""
        return time.monotonic() - self._last_print >= self.every

    def update(self, status: str = "", force: bool = False) -> None:
        if not force and not self.due():
            return
        self._last_print = time.monotonic()
        line = f"{self.label} {status} ({self.elapsed:.0f} s)".replace("  ", " ")
        if _interactive():
            print("\r" + line.ljust(78), end="", flush=True)
        else:
            print(line, flush=True)
        self._printed = True

    def done(self, status: str = "done") -> None:
        line = f"{self.label} {status} ({self.elapsed:.1f} s)"
        if _interactive():
            print("\r" + line.ljust(78), flush=True)
        else:
            print(line, flush=True)


def wait_until(check: Callable[[], bool], label: str, timeout: float, interval: float = 0.5) -> bool:
    """Call ``check`` until it returns True or ``timeout`` seconds pass, showing progress.

    Returns whether ``check`` succeeded; the caller decides what a timeout means and what
    the user should do about it.
    """
    ticker = Ticker(label)
    deadline = time.monotonic() + timeout
    while True:
        if check():
            ticker.done("ready")
            return True
        if time.monotonic() >= deadline:
            ticker.done(f"not ready after {timeout:.0f} s")
            return False
        ticker.update("waiting...")
        time.sleep(interval)
