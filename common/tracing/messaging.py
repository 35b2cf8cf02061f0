"""Spans for Kafka records, named and described by OpenTelemetry's messaging conventions.

A ``send <topic>`` span (PRODUCER) per record sent, and a ``process <topic>``
span (CONSUMER) per record handled, with the attributes the conventions give
Kafka; the names are written out here, once, as the conventions spell them.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

SYSTEM = "messaging.system"
OPERATION_NAME = "messaging.operation.name"
OPERATION_TYPE = "messaging.operation.type"
DESTINATION = "messaging.destination.name"
PARTITION = "messaging.destination.partition.id"
CONSUMER_GROUP = "messaging.consumer.group.name"
OFFSET = "messaging.kafka.offset"
KEY = "messaging.kafka.message.key"
TOMBSTONE = "messaging.kafka.message.tombstone"
BODY_SIZE = "messaging.message.body.size"
CLIENT_ID = "messaging.client.id"
BATCH_COUNT = "messaging.batch.message_count"
ERROR_TYPE = "error.type"


def shown_key(key: bytes | None) -> str | None:
    """A key as the conventions want it, a string: its text, escapes for what is not."""
    return None if key is None else key.decode("utf-8", "backslashreplace")


def send_span(
    tracer: Tracer,
    topic: str,
    key: bytes | None,
    size: int | None,
    *,
    client_id: str,
    parent: Context | None = None,
    links: Sequence[Link] = (),
) -> Span:
    """A ``send <topic>`` span, begun; the caller ends it with the broker's answer."""
    attributes: dict[str, AttributeValue] = {
        SYSTEM: "kafka",
        OPERATION_NAME: "send",
        OPERATION_TYPE: "send",
        DESTINATION: topic,
        CLIENT_ID: client_id,
    }
    if key is not None:
        attributes[KEY] = shown_key(key) or ""
    if size is not None:
        attributes[BODY_SIZE] = size
    return tracer.start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=links,
    )


def delivered(span: Span, partition: int, offset: int) -> None:
    """End a send span with where the broker put the record."""
    span.set_attribute(PARTITION, str(partition))
    span.set_attribute(OFFSET, offset)
    span.end()


def failed(span: Span, error: BaseException, error_type: str) -> None:
    """End a span failed, with the exception's type and message."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"[:1_000]))
    span.end()
