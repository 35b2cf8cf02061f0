"""A reason to stop the service that no retry can fix: one ``service.failed`` line, exit 1."""

from __future__ import annotations


class ServiceFailed(Exception):
    """The service cannot go on; ``reason`` is a short label, ``detail`` says what to do."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
