"""Log lines that join traces: ``trace_id`` and ``span_id`` from the span in progress."""

from __future__ import annotations

from opentelemetry.trace import get_current_span
from structlog.typing import EventDict, WrappedLogger


def add_trace_ids(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """Lower-case hex ids, OpenTelemetry's names, in any line written inside a span."""
    context = get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
