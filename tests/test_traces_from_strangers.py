"""A trace begun by any producer goes on in our consumer: kcat's and Kafka's Java console
producer's ``traceparent`` headers make the parent of the ``process`` span Jaeger shows.
An unsampled one records nothing and a malformed one is ignored, counted and logged once
in a while; the record is handled either way."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from harness.jaeger import Jaeger, Span
from tests.clients import CONSOLE_PRODUCER, java, kcat
from tests.conftest import Services

pytestmark = pytest.mark.usefixtures("kcat_installed")


def _traceparent(sampled: bool = True) -> tuple[str, str, str]:
    """A fresh W3C traceparent: (header value, trace id, parent span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}", trace_id, span_id


def _process_span(jaeger: Jaeger, services: Services, trace_id: str) -> Span:
    spans = services.wait_until(lambda: jaeger.trace(trace_id), what=f"trace {trace_id}")
    (span,) = spans
    return span


def test_kcat_and_java_traceparents_are_the_parents_of_our_process_spans(
    services: Services, jaeger: Jaeger, new_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=3)
    by_kcat, kcat_trace, kcat_parent = _traceparent()
    kcat(
        bootstrap, "-P", "-t", topic, "-k", "order-7", "-H", f"traceparent={by_kcat}",
        "-H", "tracestate=vendor=kcat", stdin=b"from kcat\n",
    )  # fmt: skip
    by_java, java_trace, java_parent = _traceparent()
    java(
        CONSOLE_PRODUCER,
        "--bootstrap-server", bootstrap,
        "--topic", topic,
        "--property", "parse.headers=true",
        "--property", "parse.key=true",
        stdin=f"traceparent:{by_java}\torder-8\tfrom java\n".encode(),
    )  # fmt: skip

    group = f"g-{topic}"
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group, **jaeger.env())
    services.wait_until(lambda: len(consumer.events("message.received")) >= 2, what="2 records")

    for trace_id, parent, key in (
        (kcat_trace, kcat_parent, "order-7"),
        (java_trace, java_parent, "order-8"),
    ):
        span = _process_span(jaeger, services, trace_id)
        assert (span.name, span.kind, span.service) == (f"process {topic}", "consumer", "consumer")
        assert span.parent == (trace_id, parent)
        assert span.tags["messaging.system"] == "kafka"
        assert span.tags["messaging.operation.type"] == "process"
        assert span.tags["messaging.destination.name"] == topic
        assert span.tags["messaging.consumer.group.name"] == group
        assert span.tags["messaging.kafka.message.key"] == key
        received = next(e for e in consumer.events("message.received") if e["key"] == key)
        assert span.tags["messaging.destination.partition.id"] == str(received["partition"])
        assert span.tags["messaging.kafka.offset"] == received["offset"]
        # The handler's line was written inside the span: a log search finds the trace.
        assert (received["trace_id"], received["span_id"]) == (trace_id, span.span_id)
    assert consumer.stop() == 0
    assert "Traceback" not in consumer.output()


def test_unsampled_and_malformed_traceparents_record_nothing_and_lose_nothing(
    services: Services, jaeger: Jaeger, new_topic: Callable[..., str]
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=1)
    unsampled, unsampled_trace, _ = _traceparent(sampled=False)
    malformed = ("00-not-a-trace-01", "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-" + "0" * 55)
    kcat(bootstrap, "-P", "-t", topic, "-H", f"traceparent={unsampled}", stdin=b"unsampled\n")
    for bad in malformed:
        kcat(bootstrap, "-P", "-t", topic, "-H", f"traceparent={bad}", stdin=b"malformed\n")
    sampled, sampled_trace, _ = _traceparent()
    kcat(bootstrap, "-P", "-t", topic, "-H", f"traceparent={sampled}", stdin=b"sampled\n")

    consumer = services.start(
        "consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}", **jaeger.env()
    )
    services.wait_until(lambda: len(consumer.events("message.received")) >= 5, what="5 records")
    # The sampled record's span arrives; the unsampled one's, sent no later, never does.
    _process_span(jaeger, services, sampled_trace)
    assert consumer.metric("tracing_context_invalid_total", messaging_destination_name=topic) == 3
    assert consumer.stop() == 0

    contents = [e["content"] for e in consumer.events("message.received")]
    assert contents == ["unsampled", "malformed", "malformed", "malformed", "sampled"]
    assert jaeger.trace(unsampled_trace) == []
    roots = [s for s in jaeger.spans("consumer") if s.parent is None]
    assert len(roots) == 3  # each malformed record: a trace of its own, as with no header
    # One line for the three malformed headers, however many: here the first of them.
    (invalid,) = consumer.events("traceparent.invalid")
    assert (invalid["topic"], invalid["offset"], invalid["invalid"]) == (topic, 1, 1)
    assert "Traceback" not in consumer.output()
