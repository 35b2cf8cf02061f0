"""SIGTERM and SIGINT: the first asks the service to stop cleanly, the second ends it."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class Shutdown:
    """A stop request that main loops wait on instead of sleeping."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Nothing here may log: the interrupted thread could hold the log lock.
        if self.event.is_set():
            os._exit(128 + signum)
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to *seconds*; True as soon as a stop was requested."""
        return self.event.wait(seconds)
