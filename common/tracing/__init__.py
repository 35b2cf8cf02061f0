"""OpenTelemetry traces for both services: on by OpenTelemetry's own variables, off without.

``read_settings`` checks OTEL_* at start (one line and exit 2 for a bad
value); ``Tracing.start`` sets up the SDK from them and ``Tracing.stop``
flushes the last spans within a bound. The spans themselves, ``send`` in
the producer and ``process`` in the consumer, follow OpenTelemetry's
messaging conventions (:mod:`common.tracing.messaging`), and carry W3C
Trace Context in the records' headers (docs/tracing.md says why the
contrib kafka-python instrumentation is not used).

Off, the services never touch the SDK: their loops check once, not per record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NoOpTracer, Tracer

from common import events
from common.repeats import Repeats
from common.tracing import metrics
from common.tracing._headers import (
    TRACEPARENT,
    TRACESTATE,
    Headers,
    Parent,
    parent_of,
    with_context,
)
from common.tracing._logs import add_trace_ids
from common.tracing._sdk import provider_for, stop_within
from common.tracing._settings import COMPOSE_VARIABLES, OFF, TracingSettings, read_settings

#: The most the stop waits for the last spans: inside Docker's and the chart's
#: grace periods, after the Kafka clients' own closes.
STOP_TIMEOUT_S = 2.0


class Tracing:
    """The tracing of one service process, on or off."""

    def __init__(
        self,
        provider: TracerProvider | None = None,
        processors: Sequence[BatchSpanProcessor] = (),
    ) -> None:
        self._provider = provider
        self._processors = processors
        #: Spans come from here; a no-op tracer when off.
        self.tracer: Tracer = (
            NoOpTracer() if provider is None else provider.get_tracer("eventhubs-kafka-python")
        )
        #: Unreadable traceparent headers, said once per interval with a count.
        self._invalid = Repeats()

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @classmethod
    def start(
        cls, settings: TracingSettings, exporters: Sequence[SpanExporter] | None = None
    ) -> Tracing:
        """The SDK, as *settings* say, made the process's own (psycopg's spans use it too).

        *exporters* replaces what OTEL_TRACES_EXPORTER names: a test's in-memory one.
        """
        if not settings.enabled and exporters is None:
            return cls()
        # The specification: an empty variable is an unset one. Compose passes
        # every OTEL_* it names, empty when .env leaves it out, and the SDK
        # would take an empty sampler or endpoint as given.
        for name in [n for n, v in os.environ.items() if n.startswith("OTEL_") and not v.strip()]:
            del os.environ[name]
        provider, processors = provider_for(settings, exporters)
        if exporters is None:
            trace.set_tracer_provider(provider)
            structlog.get_logger().info(
                events.TRACING_STARTED,
                exporters=",".join(settings.exporters),
                protocol=settings.protocol,
                endpoint=settings.endpoint,
                sampler=settings.sampler,
                sampler_arg=settings.sampler_arg,
                service_name=provider.resource.attributes.get("service.name"),
            )
        return cls(provider, processors)

    def parent_of(
        self, headers: Headers | None, topic: str, partition: int | None, offset: int | None
    ) -> Parent:
        """The trace a record's headers carry; an unreadable one counted, logged now and then.

        *partition* and *offset* say where the record was read (None: a source's, to send).
        """
        parent = parent_of(headers)
        if parent.invalid:
            self._said_invalid(topic, partition, offset)
        return parent

    def _said_invalid(self, topic: str, partition: int | None, offset: int | None) -> None:
        metrics.CONTEXT_INVALID.labels(topic).inc()
        invalid = self._invalid.add(topic)
        if invalid is not None:
            structlog.get_logger().warning(
                events.TRACEPARENT_INVALID,
                topic=topic,
                partition=partition,
                offset=offset,
                invalid=invalid,
                interval_s=self._invalid.interval_s,
            )

    def flush(self) -> None:
        """Export every span ended so far, now (a test reads them next)."""
        for processor in self._processors:
            processor.force_flush()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Send the spans still queued, for *timeout_s* at most, and stop."""
        if self._provider is None:
            return
        started = time.monotonic()
        left = stop_within(self._processors, timeout_s)
        if left:
            metrics.SPANS_DROPPED.labels("stopped").inc(left)
        structlog.get_logger().info(
            events.TRACING_STOPPED, took_s=round(time.monotonic() - started, 3), left=left
        )


__all__ = [
    "COMPOSE_VARIABLES",
    "OFF",
    "TRACEPARENT",
    "TRACESTATE",
    "Parent",
    "Tracing",
    "TracingSettings",
    "add_trace_ids",
    "parent_of",
    "read_settings",
    "with_context",
]
