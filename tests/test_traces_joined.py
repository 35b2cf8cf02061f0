"""Our producer's send span and our consumer's process span are one trace in Jaeger, over
either OTLP protocol; a source's record that carries a trace goes on as its child; every
log line written inside a span carries its ids; no OTEL_* variable, no trace context."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable

import pytest

from harness.jaeger import Jaeger
from tests.clients import read_all
from tests.conftest import REPO, Services


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_our_producer_and_consumer_make_one_trace_per_record(
    services: Services, jaeger: Jaeger, new_topic: Callable[..., str], protocol: str
) -> None:
    topic = new_topic(partitions=3)
    group = f"g-{topic}"
    env = jaeger.env(protocol)
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group, **env)
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="50", **env)
    services.wait_until(lambda: len(consumer.events("message.received")) >= 20, what="20 records")
    assert producer.stop() == 0
    assert consumer.stop() == 0
    assert producer.events("tracing.started")[0]["protocol"] == protocol

    sent = {(e["partition"], e["offset"]): e for e in producer.events("message.sent")}
    received = consumer.events("message.received")
    for line in received[:20]:
        trace_id = line["trace_id"]
        spans = services.wait_until(
            lambda t=trace_id: len(jaeger.trace(t)) == 2 and jaeger.trace(t), what=trace_id
        )
        send = next(s for s in spans if s.kind == "producer")
        process = next(s for s in spans if s.kind == "consumer")
        assert (send.name, send.service) == (f"send {topic}", "producer")
        assert (process.name, process.service) == (f"process {topic}", "consumer")
        assert send.parent is None
        assert process.parent == (trace_id, send.span_id)
        assert process.span_id == line["span_id"]
        where = (line["partition"], line["offset"])
        assert send.tags["messaging.destination.partition.id"] == str(where[0])
        assert send.tags["messaging.kafka.offset"] == where[1]
        assert send.tags["messaging.operation.type"] == "send"
        # The producer's own line for this record, when sampled, was written in its span.
        if where in sent:
            assert sent[where]["trace_id"] == trace_id
            assert sent[where]["span_id"] == send.span_id
    # The header the consumer logged is the one the producer's span wrote.
    first = received[0]
    headers = dict(first["headers"])
    send_span = next(s.span_id for s in jaeger.trace(first["trace_id"]) if s.kind == "producer")
    assert _parsed(headers["traceparent"]) == (first["trace_id"], send_span, True)
    assert set(jaeger.services()) >= {"producer", "consumer"}


def _parsed(traceparent: str) -> tuple[str, str, bool]:
    """(trace id, parent span id, sampled) of a W3C traceparent.

    The sampled flag is bit 0; OpenTelemetry's SDK sets bit 1 too (Trace Context
    level 2's "random trace id"), so the flags read 03.
    """
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00"
    return trace_id, span_id, bool(int(flags, 16) & 1)


def test_a_source_record_with_a_trace_is_sent_as_its_child(
    services: Services, jaeger: Jaeger, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    trace_id, app_span = secrets.token_hex(16), secrets.token_hex(8)
    unsampled_trace, unsampled_span = secrets.token_hex(16), secrets.token_hex(8)
    lines = [
        {"value": {"n": 1}, "headers": {"traceparent": f"00-{trace_id}-{app_span}-01"}},
        {
            "value": {"n": 2},
            "headers": {"traceparent": f"00-{unsampled_trace}-{unsampled_span}-00"},
        },
        {"value": {"n": 3}},
    ]
    producer = subprocess.run(
        [sys.executable, "-m", "producer"],
        env={
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": services.kafka.bootstrap_servers,
            "KAFKA_TOPIC": topic,
            "PRODUCER_SOURCE": "stdin-json",
            "METRICS_PORT": "0",
            "OTEL_SERVICE_NAME": "orders-export",
            **jaeger.env(),
        },
        cwd=REPO,
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert producer.returncode == 0, producer.stderr
    written = read_all(services.kafka.bootstrap_servers, topic)
    headers = [dict((h[0], h[1]) for h in _pairs(r["headers"])) for r in written]

    # Sent as the app's span's child, and the record carries that child's context.
    (span,) = services.wait_until(lambda: jaeger.trace(trace_id), what="the source's trace")
    assert (span.service, span.name, span.parent) == (
        "orders-export",
        f"send {topic}",
        (trace_id, app_span),
    )
    assert _parsed(headers[0]["traceparent"]) == (trace_id, span.span_id, True)
    # An unsampled trace is recorded nowhere, and its context passes on unchanged.
    assert headers[1]["traceparent"] == f"00-{unsampled_trace}-{unsampled_span}-00"
    assert jaeger.trace(unsampled_trace) == []
    # A record with none begins a trace of its own.
    third_trace, third_span, sampled = _parsed(headers[2]["traceparent"])
    assert sampled
    (root,) = services.wait_until(lambda: jaeger.trace(third_trace), what="the third's trace")
    assert (root.span_id, root.parent) == (third_span, None)


def _pairs(flat: list[str] | None) -> list[tuple[str, str]]:
    """kcat's JSON headers, ``[name, value, name, value...]``, as pairs."""
    flat = flat or []
    return list(zip(flat[::2], flat[1::2], strict=True))


def test_without_otel_variables_nothing_is_traced_and_no_header_added(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE="100")
    services.wait_until(lambda: len(producer.events("message.sent")) >= 5, what="5 sent")
    assert producer.stop() == 0
    assert producer.events("tracing.started") == []
    assert all(not r.get("headers") for r in read_all(services.kafka.bootstrap_servers, topic))
    assert all("trace_id" not in e for e in producer.events("message.sent"))
