"""Test aids shipped with the services: a clock a test moves, where a stand-in broker
wrote a record, and tracing kept in memory.

The stand-ins for kafka-python's clients live beside the Protocols they stand
in for: ``common/clients/testing.py``. A test scripts
what the broker does and reads back what the service did, in milliseconds,
the way httpx's ``MockTransport`` stands in for the network; the promises
users rely on are tested against Kafka itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.tracing import Tracing, TracingSettings


class ManualClock:
    """A monotonic clock a test moves: by hand (``advance``), or by *step* on every read."""

    def __init__(self, start: float = 1000.0, step: float = 0.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        now = self.now
        self.now += self.step
        return now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Written:
    """Where a stand-in broker wrote a record: ``RecordMetadata``'s fields."""

    topic: str
    partition: int
    offset: int
    serialized_key_size: int
    serialized_value_size: int


class SpanRecorder:
    """Tracing on, its spans kept in memory: give ``tracing`` to a service, read ``spans()``.

    OpenTelemetry's own in-memory exporter behind the services' batching, so a
    loop test sees the spans a backend would be sent; the process's global
    tracer provider is left alone.
    """

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracing = Tracing.start(
            TracingSettings(enabled=True, exporters=("memory",), default_service_name="test"),
            exporters=[self.exporter],
        )

    def spans(self) -> list[ReadableSpan]:
        """Every span ended so far, in the order they ended."""
        self.tracing.flush()
        return list(self.exporter.get_finished_spans())

    def close(self) -> None:
        self.tracing.stop()


__all__ = ["ManualClock", "SpanRecorder", "Written"]
