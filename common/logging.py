"""Structured logs: one JSON object per line on stdout, or console lines on a terminal.

Our own events go through structlog's fast native path; kafka-python's stdlib
records are rendered by the same processors, so every line has the same shape
(``timestamp``, ``level``, ``service``, ``instance``, ``event``). Known secrets
are replaced in every value before anything is written.

The libraries under us speak from WARNING (everything at ``LOG_LEVEL=DEBUG``),
and a line of theirs that repeats, such as kafka-python's "Connection failed"
on every try while a broker is down, is written once per interval with a
count of the ones held back. (Its lines about an unreachable group
coordinator become ``coordinator.unavailable``: common/clients/_compat.py.)
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
import structlog.tracebacks
from structlog.typing import EventDict, Processor, WrappedLogger

from common import events
from common.tracing import add_trace_ids

REDACTED = "[REDACTED]"
#: How often one library line may show; the rest are counted.
REPEAT_INTERVAL_S = 10.0
#: Lines remembered at most; a library that formats its own text makes a new one each time.
_REMEMBERED = 1_000
#: The libraries whose INFO lines narrate every connection or token request.
_LIBRARIES = ("kafka", "azure", "opentelemetry")
#: ``exception``: a list of {exc_type, exc_value, frames: [{filename, lineno, name}]...}.
#: No locals: a frame's variables may hold a secret the redactor cannot
#: know, such as a row's values or a token.
_EXCEPTION_AS_DATA = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False, use_rich=False)
)


class Redactor:
    """Replaces each known secret, and anything matching *patterns*, wherever it appears
    in a log event's values."""

    def __init__(self, secrets: Iterable[str], patterns: Iterable[re.Pattern[str]] = ()) -> None:
        # Longest first, so a key inside a connection string cannot leave a tail.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._patterns = tuple(patterns)

    def text(self, value: str) -> str:
        """*value* with every known secret replaced: for what leaves by another way than a
        log line (a dead letter's headers)."""
        cleaned: str = self._clean(value)
        return cleaned

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            for pattern in self._patterns:
                value = pattern.sub(REDACTED, value)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        if isinstance(value, BaseException):
            return self._clean(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, _logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        if not self._secrets and not self._patterns:
            return event
        return {key: self._clean(value) for key, value in event.items()}


def _static_fields(service: str) -> Processor:
    instance = socket.gethostname()

    def add(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        event.setdefault("instance", instance)
        return event

    return add


def _stdlib_origin(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        event["logger"] = record.name
    return event


def _library_errors_in_one_line(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """kafka-python's errors as one ``error`` field, not a traceback.

    It logs some of its own hiccups with a traceback (a socket torn down while
    a read is pending, during a broker restart or a close); that is noise to an
    operator, and the type and message carry what matters. LOG_LEVEL=DEBUG
    keeps the tracebacks.
    """
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1]
    else:
        error = None
    if error is not None:
        event["error"] = f"{type(error).__name__}: {error}"
    return event


class RepeatLimiter(logging.Filter):
    """Lets each line of a library through at most once per interval, counting the rest.

    A line is its logger and its message template, whatever its arguments:
    "Connection failed: %s" is one line whatever failed.
    The count of those held back is logged (``log.repeated``) when the line
    next shows, an interval later.
    """

    def __init__(
        self,
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        #: Per line: when it last showed, and how many were held back since.
        self._lines: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            shown_at, held = self._lines.get(key, (now - self._interval_s, 0))
            if now - shown_at < self._interval_s:
                self._lines[key] = (shown_at, held + 1)
                return False
            if len(self._lines) >= _REMEMBERED:
                self._forget_quiet(now)
            self._lines[key] = (now, 0)
        if held:
            structlog.get_logger().warning(
                events.LIBRARY_REPEATED,
                logger=record.name,
                message=key[1],
                repeated=held,
                interval_s=self._interval_s,
            )
        return True

    def _forget_quiet(self, now: float) -> None:
        """Drop the lines that held nothing back: first those an interval old, then all.

        A line forgotten early may show again within its interval; a count
        held back is never forgotten.
        """
        lines = {k: v for k, v in self._lines.items() if v[1] or now - v[0] < self._interval_s}
        if len(lines) >= _REMEMBERED:
            lines = {k: v for k, v in lines.items() if v[1]}
        self._lines = lines


def configure(
    service: str,
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    secret_patterns: Iterable[re.Pattern[str]] = (),
    *,
    trace_ids: bool = False,
) -> None:
    """Set up structlog and the stdlib root logger for *service*; idempotent.

    *trace_ids*: tracing is on, and a line written inside a span carries its ids.
    """
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _static_fields(service),
        *([add_trace_ids] if trace_ids else []),
        # An exception (the user's handler's, say) as its traceback, before the
        # redactor sees it: text on a console, frames as data in JSON.
        structlog.processors.format_exc_info if console else _EXCEPTION_AS_DATA,
        Redactor(secrets, secret_patterns),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelNamesMapping()[level]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RepeatLimiter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                _stdlib_origin,
                *([] if level == "DEBUG" else [_library_errors_in_one_line]),
                *shared,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # kafka-python narrates every connection at INFO, and azure-core every token
    # request, over several lines: operators want their warnings (and an OTLP
    # exporter's, once per interval while the backend is down).
    for library in _LIBRARIES:
        logging.getLogger(library).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


class Sampler:
    """Decides which of many similar events to log: every Nth, or none for 0.

    The first of every group of N, so the very first event always shows.
    Called once per message, so it counts down instead of dividing.
    """

    __slots__ = ("_every", "_left")

    def __init__(self, every: int) -> None:
        self._every = every
        # Never 0 when sampling is off: counting down from -1 never reaches it.
        self._left = 1 if every > 0 else -1

    def __call__(self) -> bool:
        self._left -= 1
        if self._left:
            return False
        self._left = self._every
        return True
