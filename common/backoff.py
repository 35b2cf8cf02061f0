"""The one retry policy: exponential backoff with jitter, capped.

Every loop that waits for something outside (a broker, a topic) asks a
``Backoff`` how long to wait, so they all back off alike: fast at first,
never more than ``maximum`` seconds, and never in lock-step with each other.
"""

from __future__ import annotations

import random

#: First wait, and the longest; the Java client's reconnect cap is 1 s, but a
#: missing topic or a refused broker is rarely fixed in less than seconds.
INITIAL_S = 0.5
MAXIMUM_S = 30.0


class Backoff:
    """Waits of ``initial * 2**n`` seconds, capped at ``maximum``, each plus up to 10% jitter."""

    __slots__ = ("_attempt", "initial", "maximum")

    def __init__(self, initial: float = INITIAL_S, maximum: float = MAXIMUM_S) -> None:
        self.initial = initial
        self.maximum = maximum
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many waits were handed out since the last success."""
        return self._attempt

    def next(self) -> float:
        """The next wait, in seconds."""
        base = min(self.maximum, self.initial * 2.0**self._attempt)
        self._attempt += 1
        # Jitter: consumers restarted together must not retry together.
        return min(self.maximum, base * (1 + random.random() / 10))  # noqa: S311

    def reset(self) -> None:
        """After a success: the next failure starts from ``initial`` again."""
        self._attempt = 0
