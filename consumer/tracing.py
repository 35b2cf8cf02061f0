"""A ``process <topic>`` span per record handled, across its retries, when tracing is on.

The record's own trace context (its ``traceparent`` header) is the span's
parent: one record per span, so the parent is never ambiguous, and the trace
that began in the producer or the user's app reads as one tree, down to
what the handler does (its spans are children: it runs inside). A record
the handler failed on keeps its span open while it waits for its retry: a
``retry`` event marks each new try, each failure is an ``exception`` event,
and the span ends when the record is behind us: handled, dead-lettered, or
the consumer stops.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.context import attach, detach
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Tracer,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from common.clients import TopicPartition
from common.tracing import Tracing
from common.tracing import messaging as conventions
from consumer.dead_letter import exception_type
from consumer.handler import Handler, Record

#: Links a batch's span carries at most: the SDK keeps 128 by default.
MAX_LINKS = 128


class _Open:
    """A record's span kept open while the record waits for another try."""

    __slots__ = ("offset", "span", "tries")

    def __init__(self, offset: int, span: Span) -> None:
        self.offset = offset
        self.span = span
        self.tries = 1


class RecordSpans:
    """The spans of one consumer's records; one open per partition at most, as retries are."""

    def __init__(self, tracing: Tracing, topic: str, group_id: str) -> None:
        self._tracing = tracing
        self._tracer: Tracer = tracing.tracer
        self._name = f"process {topic}"
        self._attributes: dict[str, AttributeValue] = {
            conventions.SYSTEM: "kafka",
            conventions.OPERATION_NAME: "process",
            conventions.OPERATION_TYPE: "process",
            conventions.DESTINATION: topic,
            conventions.CONSUMER_GROUP: group_id,
        }
        self._open: dict[TopicPartition, _Open] = {}

    def call(self, handle: Handler, partition: TopicPartition, record: Record) -> None:
        """``handle(record)`` inside the record's span: ended if it returns, kept if it raises."""
        span = self._span_for(partition, record)
        token = attach(set_span_in_context(span))
        try:
            handle(record)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            detach(token)
        self._open.pop(partition, None)
        span.end()

    @contextmanager
    def inside(self, partition: TopicPartition, record: Record) -> Iterator[None]:
        """The record's span as the current one: for the loop's own lines and dead letter."""
        span = self._span_for(partition, record, retry=False)
        token = attach(set_span_in_context(span))
        try:
            yield
        finally:
            detach(token)

    def done(self, partition: TopicPartition, outcome: str, error: BaseException) -> None:
        """The handler gave up on the partition's record: *outcome* says what became of it."""
        found = self._open.pop(partition, None)
        if found is None:
            return
        found.span.add_event(outcome, {"attempts": found.tries})
        conventions.failed(found.span, error, exception_type(error))

    def start(self, record: Record) -> Span:
        """A record's span, for a caller that holds it itself (a worker, across its tries)."""
        return self._start(record)

    def start_batch(self, records: Sequence[Record]) -> Span:
        """A batch's span: no parent, as the conventions have it for a batch, and a link
        to the trace each record came with (at most MAX_LINKS)."""
        links = []
        for record in records[:MAX_LINKS]:
            parent = self._tracing.parent_of(
                record.headers, record.topic, record.partition, record.offset
            )
            if parent.context is not None:
                links.append(Link(get_current_span(parent.context).get_span_context()))
        attributes = dict(self._attributes)
        attributes[conventions.PARTITION] = str(records[0].partition)
        attributes[conventions.OFFSET] = records[0].offset
        attributes[conventions.BATCH_COUNT] = len(records)
        return self._tracer.start_span(
            self._name, kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )

    @staticmethod
    def failed(span: Span, outcome: str, error: BaseException) -> None:
        """End a span the handler gave up on: *outcome* says what became of its record."""
        span.add_event(outcome)
        conventions.failed(span, error, exception_type(error))

    def keep_only(self, assigned: Collection[TopicPartition]) -> None:
        """End the spans of records whose partition went to another member."""
        for partition in [tp for tp in self._open if tp not in assigned]:
            found = self._open.pop(partition)
            found.span.add_event("partition_revoked", {"attempts": found.tries})
            found.span.end()

    def close(self) -> None:
        """The consumer stops: records still waiting are handled again at the next start."""
        for found in self._open.values():
            found.span.add_event("consumer_stopped", {"attempts": found.tries})
            found.span.end()
        self._open.clear()

    def _span_for(self, partition: TopicPartition, record: Record, *, retry: bool = True) -> Span:
        found = self._open.get(partition)
        if found is not None and found.offset == record.offset:
            if retry:
                found.tries += 1
                found.span.add_event("retry", {"attempt": found.tries})
            return found.span
        span = self._start(record)
        self._open[partition] = _Open(record.offset, span)
        return span

    def _start(self, record: Record) -> Span:
        parent = self._tracing.parent_of(
            record.headers, record.topic, record.partition, record.offset
        )
        attributes = dict(self._attributes)
        attributes[conventions.PARTITION] = str(record.partition)
        attributes[conventions.OFFSET] = record.offset
        if record.key is not None:
            attributes[conventions.KEY] = conventions.shown_key(record.key) or ""
        if record.value is None:
            attributes[conventions.TOMBSTONE] = True
        else:
            attributes[conventions.BODY_SIZE] = len(record.value)
        return self._tracer.start_span(
            self._name, context=parent.context, kind=SpanKind.CONSUMER, attributes=attributes
        )
