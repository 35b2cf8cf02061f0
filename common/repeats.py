"""Many of the same thing, said as one line per interval with how many there were.

For lines a fault repeats at the rate of messages (spans dropped while a
trace backend is down, unreadable ``traceparent`` headers): the first is
said at once, later ones at most once per interval per key, each line
counting everything since the last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: How often, at most, the same key is said.
INTERVAL_S = 10.0


class Repeats:
    """Decides, per key, which of many occurrences is said, and with what count."""

    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        #: Per key: when it may next be said, and the amount held back since it last was.
        self._keys: dict[str, tuple[float, int]] = {}

    def add(self, key: str, amount: int = 1) -> int | None:
        """Count *amount* under *key*: None to hold it back, or the amount to say now
        (this one and every one held back since the last line)."""
        now = self._clock()
        with self._lock:
            due, held = self._keys.get(key, (now, 0))
            if now < due:
                self._keys[key] = (due, held + amount)
                return None
            self._keys[key] = (now + self.interval_s, 0)
        return held + amount
