"""How many messages are due now, at PRODUCER_RATE, in bursts the loop sends in a row.

Sending in bursts is what lets the producer keep up with bare kafka-python:
looking after answers, health and stalls once per message cost it more than
building the message; once per burst it is noise. At a set rate a burst is
whatever fell due since the last look, usually one message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Most messages sent in a row: about 3 ms of sends at full speed.
BURST = 100
#: After a stall (a blocked send, a paused VM) at most this much is caught up:
#: the rate resumes, it does not turn into a flood.
CATCH_UP_S = 1.0


class Pace:
    """Messages due at *rate* per second; 0 means as fast as the client takes them."""

    def __init__(
        self, rate: float, burst: int = BURST, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._burst = burst
        self._clock = clock
        self._next_at = clock()

    def due(self) -> int:
        """Messages to send now, at most a burst; 0 until ``wait_s()`` has passed."""
        if not self._interval:
            return self._burst
        now = self._clock()
        if now < self._next_at:
            return 0
        self._next_at = max(self._next_at, now - CATCH_UP_S)
        return min(self._burst, int((now - self._next_at) / self._interval) + 1)

    def took(self, count: int) -> None:
        """*count* of the messages due were sent (or failed): the next are due later."""
        self._next_at += count * self._interval

    def wait_s(self) -> float:
        """Seconds until the next message is due."""
        return max(0.0, self._next_at - self._clock())
