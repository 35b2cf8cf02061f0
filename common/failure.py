"""A reason to stop the service that no retry can fix: one ``service.failed`` line."""

from __future__ import annotations


class ServiceFailed(Exception):
    """The service cannot go on; ``reason`` is a short label, ``detail`` says what to do.

    ``exit_status`` is 1 unless a restart cannot help either: 2, as for bad
    settings, when what the user configured is itself wrong. ``cause`` is the
    user's own exception (their handler's or source's), whose traceback the
    line carries so that they can find their bug.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        exit_status: int = 1,
        cause: BaseException | None = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.exit_status = exit_status
        self.cause = cause
        super().__init__(f"{reason}: {detail}")
