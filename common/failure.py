"""A reason to stop the service that no retry can fix: one ``service.failed`` line."""

from __future__ import annotations


class ServiceFailed(Exception):
    """The service cannot go on; ``reason`` is a short label, ``detail`` says what to do.

    ``exit_status`` is 1 unless a restart cannot help either: 2, as for bad
    settings, when what the user configured is itself wrong.
    """

    def __init__(self, reason: str, detail: str, *, exit_status: int = 1) -> None:
        self.reason = reason
        self.detail = detail
        self.exit_status = exit_status
        super().__init__(f"{reason}: {detail}")
