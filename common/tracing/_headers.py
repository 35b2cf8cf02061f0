"""W3C Trace Context in Kafka headers: ``traceparent`` and ``tracestate``, as text.

What OpenTelemetry's Kafka instrumentations, Spring Kafka and Azure's Event
Hubs SDKs write. Reading goes through OpenTelemetry's own propagator; a
``traceparent`` it cannot parse is reported, so the caller can count it,
and otherwise ignored: the record is handled like one without.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_OURS = (TRACEPARENT, TRACESTATE)
_PROPAGATOR = TraceContextTextMapPropagator()

Headers = Sequence[tuple[str, bytes | None]]


class _HeadersGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeadersGetter()


class Parent(NamedTuple):
    """What a record's headers say of the trace it belongs to."""

    #: The record's trace as a parent context; None when it carries none (or a bad one).
    context: Context | None
    #: It carried a ``traceparent`` that could not be read.
    invalid: bool


NO_PARENT = Parent(None, invalid=False)


def parent_of(headers: Headers | None) -> Parent:
    """The trace context a record's *headers* carry, if any, through OpenTelemetry."""
    if not headers:
        return NO_PARENT
    found: dict[str, str] = {}
    for name, value in headers:
        if name in _OURS and value is not None:
            # Both are ASCII by the W3C's grammar; anything else cannot parse.
            found[name] = value.decode("ascii", "replace")
    if TRACEPARENT not in found:
        return NO_PARENT
    context = _PROPAGATOR.extract(found, getter=_GETTER)
    if not get_current_span(context).get_span_context().is_valid:
        return Parent(None, invalid=True)
    return Parent(context, invalid=False)


def with_context(
    headers: Sequence[tuple[str, bytes]] | None, span: Span
) -> list[tuple[str, bytes]]:
    """*headers* with *span*'s context as ``traceparent``/``tracestate``, replacing any."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=set_span_in_context(span))
    kept = [(name, value) for name, value in headers or () if name not in _OURS]
    return kept + [(name, value.encode("ascii")) for name, value in carrier.items()]
