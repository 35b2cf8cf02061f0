"""The spans the loops make, broker-free on common.testing's stand-ins: one ``process`` span
per record across its retries (each try an event, a failure its status), the dead-letter
send a child linked to the record's own trace, the dead letter keeping its traceparent;
the producer's ``send`` span ended with the broker's answer, its context in the headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from common.clients.testing import (
    FakeProducer,
    FakeSendFuture,
    LogConsumer,
    Record,
    TopicPartition,
)
from common.config import ConsumerSettings, ProducerSettings, load, resolve
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown
from common.testing import ManualClock, SpanRecorder
from consumer.dead_letter import DeadLetters
from consumer.handler import Record as Handled
from consumer.handler import RecordRefused
from consumer.service import ConsumerService
from producer.feed import Feed
from producer.service import ProducerService
from producer.source import Outgoing

TOPIC = "orders"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{APP_SPAN}-01".encode()


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    # The loops' lines and the recorder's own, captured: not into another test's stdout.
    with structlog.testing.capture_logs():
        spans = SpanRecorder()
        yield spans
        spans.close()


def _consume(
    recorder: SpanRecorder,
    log: list[Record],
    handler: Callable[[Handled], None],
    dead_letters: FakeProducer | None = None,
) -> LogConsumer:
    client = LogConsumer(TOPIC, polls=[], logs={TopicPartition(TOPIC, 0): log}, clock=ManualClock())
    shutdown = Shutdown()
    client.after_script = shutdown.event.set
    plan = resolve(
        load(
            ConsumerSettings,
            {"bootstrap_servers": "127.0.0.1:9", "topic": TOPIC, "group_id": "g",
             "retry_attempts": 3, "retry_backoff_ms": 1_000},
        )
    )  # fmt: skip
    letters = None
    if dead_letters is not None:
        letters = DeadLetters(
            "dlt", "g", lambda: dead_letters, timeout_s=60.0, tracing=recorder.tracing
        )
        letters.start()
    assert client.clock is not None
    ConsumerService(
        plan,
        client,
        Health(),
        shutdown,
        handler=handler,
        dead_letters=letters,
        clock=client.clock,
        tracing=recorder.tracing,
    ).run()
    return client


def _hex(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


def _events(span: ReadableSpan) -> list[tuple[str, object]]:
    return [
        (e.name, (e.attributes or {}).get("attempt", (e.attributes or {}).get("exception.type")))
        for e in span.events
    ]


def test_a_record_retried_twice_is_one_span_with_each_try_an_event(
    recorder: SpanRecorder,
) -> None:
    tries: list[int] = []

    def flaky(record: Handled) -> None:
        tries.append(record.offset)
        if len(tries) <= 2:
            raise OSError("busy")

    log = [Record(TOPIC, 0, 0, b"v", b"k-1", 0, (("traceparent", TRACEPARENT),))]
    _consume(recorder, log, flaky)

    (span,) = recorder.spans()
    assert (span.name, span.kind) == (f"process {TOPIC}", SpanKind.CONSUMER)
    assert _hex(span)[0] == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == APP_SPAN
    assert _events(span) == [
        ("exception", "OSError"),
        ("retry", 2),
        ("exception", "OSError"),
        ("retry", 3),
    ]
    assert span.status.status_code is StatusCode.UNSET  # it worked in the end
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": TOPIC,
        "messaging.consumer.group.name": "g",
        "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": 0,
        "messaging.kafka.message.key": "k-1",
        "messaging.message.body.size": 1,
    }


def test_a_dead_lettered_record_fails_its_span_and_its_dead_letter_keeps_the_trace(
    recorder: SpanRecorder,
) -> None:
    def refuse(record: Handled) -> None:
        raise RecordRefused("bad schema")

    log = [Record(TOPIC, 0, 7, None, None, 0, (("traceparent", TRACEPARENT),))]
    dlt = FakeProducer.acknowledging()
    _consume(recorder, log, refuse, dlt)

    send, process = recorder.spans()
    assert process.status.status_code is StatusCode.ERROR
    assert process.status.description == "consumer.handler.RecordRefused: bad schema"
    assert (process.attributes or {})["error.type"] == "consumer.handler.RecordRefused"
    assert (process.attributes or {})["messaging.kafka.message.tombstone"] is True
    assert [name for name, _ in _events(process)] == ["exception", "dead_lettered"]
    # The dead-letter send: a child of process, linked to the trace the record came with.
    assert (send.name, send.kind) == ("send dlt", SpanKind.PRODUCER)
    assert send.parent is not None
    assert process.context is not None
    assert send.parent.span_id == process.context.span_id
    (link,) = send.links
    assert (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) == (
        TRACE_ID,
        APP_SPAN,
    )
    assert (send.attributes or {})["messaging.kafka.offset"] == 0
    # ... and the record's own traceparent is what the dead letter carries, unchanged.
    (letter,) = dlt.sent
    assert letter.header("traceparent") == TRACEPARENT.decode()


def test_a_record_given_up_without_a_dead_letter_topic_ends_its_span_failed(
    recorder: SpanRecorder,
) -> None:
    def broken(record: Handled) -> None:
        raise ValueError("no")

    log = [Record(TOPIC, 0, 0), Record(TOPIC, 0, 1)]
    with pytest.raises(Exception, match="handler_failed"):
        _consume(recorder, log, broken)

    (span,) = recorder.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.parent is None  # no traceparent: a trace of its own
    assert [name for name, _ in _events(span)][-1] == "failed"
    assert len([e for e in span.events if e.name == "exception"]) == 3


def test_each_send_is_a_span_ended_by_the_brokers_answer_its_context_in_the_headers(
    recorder: SpanRecorder,
) -> None:
    def answer(future: FakeSendFuture) -> None:
        if future.payload == b"first":
            future.succeed(partition=3, offset=41)
        else:
            future.fail(OSError("broker gone"))

    client = FakeProducer(on_send=answer)
    plan = resolve(
        load(ProducerSettings, {"bootstrap_servers": "127.0.0.1:9", "topic": TOPIC, "rate": 0})
    )
    source = [
        Outgoing(b"first", key=b"k"),
        Outgoing(b"second", headers=[("origin", b"app")]),
        Outgoing(b"third", headers=[("traceparent", TRACEPARENT)]),
    ]
    service = ProducerService(
        plan, lambda: client, Health(), Shutdown(), feed=Feed(source), tracing=recorder.tracing
    )
    with pytest.raises(ServiceFailed, match="records_undelivered"):
        service.run()  # two of three failed: exit 1, as without tracing

    delivered, failed, child = recorder.spans()
    assert (delivered.name, delivered.kind) == (f"send {TOPIC}", SpanKind.PRODUCER)
    attributes = dict(delivered.attributes or {})
    assert attributes["messaging.destination.partition.id"] == "3"
    assert attributes["messaging.kafka.offset"] == 41
    assert attributes["messaging.kafka.message.key"] == "k"
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "OSError"
    # The third went on the trace its source began.
    assert _hex(child)[0] == TRACE_ID
    assert child.parent is not None
    assert format(child.parent.span_id, "016x") == APP_SPAN
    # Each record carries its own send span's context; the source's headers kept first.
    for span, sent in zip((delivered, failed, child), client.sent, strict=True):
        trace_id, span_id = _hex(span)
        headers = dict(sent.headers)
        assert headers["traceparent"].decode().startswith(f"00-{trace_id}-{span_id}-")
    assert next(iter(dict(client.sent[1].headers))) == "origin"
