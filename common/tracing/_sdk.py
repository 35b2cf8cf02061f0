"""The OpenTelemetry SDK, set up from checked settings: provider, sampler, exporter, batches.

Everything the SDK can read from OTEL_* it reads itself (endpoint, headers,
timeouts, batch sizes, resource attributes, sampler); this module picks the
exporter classes, counts what becomes of every span, and bounds the stop.

The one reach inside the SDK: the batch processor's count of spans dropped
for a full queue is private (its public form is an OpenTelemetry metric,
off unless OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, and the services speak
Prometheus), so :func:`_count_queue_drops` swaps in our counter. A test
holds it to the pinned SDK.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Protocol

import structlog
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from common import events
from common.repeats import Repeats
from common.tracing import metrics
from common.tracing._settings import EXPORTER_ENTRY_POINTS, TracingSettings


def exporter_for(
    name: str, protocol: str, headers: Mapping[str, str] | None = None
) -> SpanExporter:
    """The exporter *name*; it reads its endpoint, headers and timeout from OTEL_*.

    *headers*, read from a file, are handed to the OTLP exporters instead.

    ``otlp`` and ``console`` are the specification's; any other name is an
    installed package's exporter, as OpenTelemetry's auto-configuration finds it.
    """
    if name not in ("otlp", "console"):
        (found,) = entry_points(group=EXPORTER_ENTRY_POINTS, name=name)
        made: SpanExporter = found.load()()
        return made
    if name == "console":
        # One line per span, on stderr: stdout is the services' JSON logs.
        return ConsoleSpanExporter(
            out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(headers=dict(headers)) if headers is not None else GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(headers=dict(headers)) if headers is not None else HttpExporter()


def resource_for(settings: TracingSettings) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, else the service's own name."""
    resource = Resource.create()
    named = str(resource.attributes.get(SERVICE_NAME, ""))
    if named.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: settings.default_service_name}))
    return resource


class DropLog:
    """Dropped spans counted, and said once per interval per reason with the count since."""

    def __init__(self, repeats: Repeats | None = None) -> None:
        self._repeats = repeats or Repeats()

    def dropped(self, count: int, reason: str) -> None:
        metrics.SPANS_DROPPED.labels(reason).inc(count)
        spans = self._repeats.add(reason, count)
        if spans is not None:
            structlog.get_logger().warning(
                events.TRACING_SPANS_DROPPED,
                reason=reason,
                spans=spans,
                interval_s=self._repeats.interval_s,
            )


class CountingExporter(SpanExporter):
    """Counts every span the exporter sent, or failed to send (they are dropped)."""

    def __init__(self, exporter: SpanExporter, drops: DropLog) -> None:
        self._exporter = exporter
        self._drops = drops

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:  # noqa: BLE001  (an exporter's bug must not end the batch thread)
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            metrics.SPANS_EXPORTED.inc(len(spans))
        else:
            self._drops.dropped(len(spans), "export_failed")
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class _ProcessorMetrics(Protocol):
    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None: ...
    def drop_items(self, count: int, error_type: str = "queue_full") -> None: ...
    def finish_items(self, count: int) -> None: ...


class _QueueDrops:
    """The batch processor's drop count, into ours (see the module's docstring)."""

    def __init__(self, drops: DropLog) -> None:
        self._drops = drops

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        pass

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._drops.dropped(count, error_type)

    def finish_items(self, count: int) -> None:
        pass


def _count_queue_drops(processor: BatchSpanProcessor, drops: DropLog) -> None:
    batch = processor._batch_processor
    counter: _ProcessorMetrics = _QueueDrops(drops)
    batch._metrics = counter


def queued(processor: BatchSpanProcessor) -> int:
    """Spans still waiting in the batch processor's queue."""
    return len(processor._batch_processor._queue)


def provider_for(
    settings: TracingSettings, exporters: Sequence[SpanExporter] | None = None
) -> tuple[TracerProvider, list[BatchSpanProcessor]]:
    """A provider that batches every sampled span to each exporter, counting them.

    Not shut down at interpreter exit: the SDK's own hook would wait up to
    30 s on a backend that is down; :class:`common.tracing.Tracing` stops it
    within its own bound instead.
    """
    # The sampler from OTEL_TRACES_SAMPLER and its argument, checked already.
    provider = TracerProvider(resource=resource_for(settings), shutdown_on_exit=False)
    drops = DropLog()
    if exporters is None:
        exporters = [
            exporter_for(name, settings.protocol, settings.headers) for name in settings.exporters
        ]
    processors = []
    for exporter in exporters:
        processor = BatchSpanProcessor(CountingExporter(exporter, drops))
        _count_queue_drops(processor, drops)
        provider.add_span_processor(processor)
        processors.append(processor)
    return provider, processors


def stop_within(processors: Sequence[BatchSpanProcessor], timeout_s: float) -> int:
    """Export what is queued, for at most *timeout_s* in all; the spans left behind.

    The exporters' retries end when they are shut down, so a backend that is
    down costs the stop *timeout_s* at most.
    """
    deadline = time.monotonic() + timeout_s
    left = 0
    for processor in processors:
        remaining_ms = max(0.0, deadline - time.monotonic()) * 1000
        processor._batch_processor.shutdown(timeout_millis=int(remaining_ms))
        left += queued(processor)
    return left
