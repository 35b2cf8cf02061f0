"""Liveness and readiness, as the service's main loop reports them.

Alive means the main loop is not stuck: it beat recently, or it said it
would be back later (a backoff while the broker is down is a wait the loop
chose, not a stall, and must not get the container restarted). Ready means
connected and doing its job.
"""

from __future__ import annotations

import time

#: How long past its promise a loop may be silent before it counts as stuck.
STALE_AFTER_S = 30.0


class Health:
    """What /healthz and /readyz answer; written by the main loop, read by the HTTP thread."""

    def __init__(self, stale_after: float = STALE_AFTER_S) -> None:
        self._stale_after = stale_after
        self._deadline = time.monotonic() + stale_after
        self._ready = False
        self._reason = "starting"

    def beat(self) -> None:
        """The loop is running now."""
        self._deadline = time.monotonic() + self._stale_after

    def expect(self, seconds: float) -> None:
        """The loop is about to wait *seconds* on purpose; alive until then, and the grace after."""
        self._deadline = time.monotonic() + seconds + self._stale_after

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self._ready = ready
        self._reason = "" if ready else reason

    @property
    def alive(self) -> bool:
        return time.monotonic() < self._deadline

    @property
    def ready(self) -> bool:
        return self._ready and self.alive

    @property
    def reason(self) -> str:
        return self._reason
