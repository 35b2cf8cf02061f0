"""What a handler's outputs are promised, broker-free on common.testing's stand-ins
(docs/handlers.md, "Publishing from the handler"): what it returns is published, to its
own topic or CONSUMER_OUTPUT_TOPIC, with the record's trace carried on; no input offset is
committed before its outputs are acknowledged, and an output the broker fails stops the
consumer with nothing past the last commit committed; what is no output fails the call
like an error of the handler's own; the output topic is checked at start."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from common.clients.testing import (
    FakeProducer,
    LogConsumer,
    TopicPartition,
    records,
)
from common.config import ConfigError, ConsumerPlan, ConsumerSettings, load, resolve
from common.failure import ServiceFailed
from common.testing import SpanRecorder
from consumer.handler import BatchFailed, Output, batch
from consumer.handler import Record as Handled
from consumer.outputs import Outputs
from tests.loops import run_until

TOPIC, OUT = "t", "out"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)

pytestmark = pytest.mark.usefixtures("logs")


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "retry_attempts": 1,
                "retry_backoff_ms": 1,
                "output_topic": OUT,
                **settings,
            },
        )
    )


def _log(p0: int = 3, p1: int = 2) -> LogConsumer:
    return LogConsumer(
        TOPIC,
        polls=[],
        logs={P0: records(TOPIC, 0, range(p0)), P1: records(TOPIC, 1, range(p1))},
    )


def copy(record: Handled) -> Output:
    where = f"{record.partition}/{record.offset}".encode()
    return Output(b"copy-" + (record.value or b""), key=record.key, headers=[("input", where)])


@pytest.mark.parametrize("ordering", ["partition", "key"])
def test_what_the_handler_returns_is_published_and_then_committed(ordering: str) -> None:
    client, outputs = _log(), FakeProducer.acknowledging()
    run_until(_plan(ordering=ordering), client, copy, lambda: len(outputs.sent) == 5,
              outputs=outputs)  # fmt: skip

    assert sorted((f.topic, f.payload, f.header("input")) for f in outputs.sent) == [
        (OUT, b"copy-value", where) for where in ("0/0", "0/1", "0/2", "1/0", "1/1")
    ]
    assert client.committed() == {P0: 3, P1: 2}


def test_an_output_names_its_own_topic_and_a_handler_returns_several() -> None:
    def fan_out(record: Handled) -> list[Output]:
        return [Output(b"a", topic="audit"), Output(b"b"), Output(None, key=b"gone")]

    client, outputs = _log(1, 0), FakeProducer.acknowledging()
    run_until(_plan(), client, fan_out, lambda: len(outputs.sent) == 3, outputs=outputs)

    assert [(f.topic, f.key, f.payload) for f in outputs.sent] == [
        ("audit", None, b"a"),
        (OUT, None, b"b"),
        (OUT, b"gone", None),
    ]


@pytest.mark.parametrize("ordering", ["partition", "key"])
def test_no_offset_is_committed_before_its_outputs_are_acknowledged(
    ordering: str, logs: list[dict[str, object]]
) -> None:
    client, outputs = _log(), FakeProducer()  # answers nothing
    run_until(_plan(ordering=ordering, drain_timeout_ms=50), client, copy,
              lambda: len(outputs.sent) == 5, outputs=outputs)  # fmt: skip

    assert client.committed() == {}
    said = [line for line in logs if line["event"] == "outputs.unacknowledged"]
    assert [(line["reason"], line["error"]) for line in said] == [
        ("stopping", "not acknowledged in time")
    ]


def test_an_output_the_broker_fails_brings_a_new_producer_and_the_records_again(
    logs: list[dict[str, object]],
) -> None:
    handled: list[int] = []

    def copy_noting(record: Handled) -> Output:
        handled.append(record.offset)
        return copy(record)

    outputs = FakeProducer.acknowledging(refuse=1, error=ConnectionResetError("gone"))
    client = _log(p0=3, p1=0)
    run_until(_plan(), client, copy_noting, lambda: client.committed() == {P0: 3},
              outputs=outputs)  # fmt: skip

    assert handled == [0, 1, 2, 0, 1, 2]
    # The first output failed; those after it, written, are written again: at least once.
    assert sorted(f.header("input") for f in outputs.written()) == [
        "0/0", "0/1", "0/1", "0/2", "0/2"
    ]  # fmt: skip
    (failed,) = [line for line in logs if line["event"] == "outputs.failed"]
    assert "an output to out failed: ConnectionResetError: gone" in str(failed["error"])


def test_in_key_order_an_output_the_broker_fails_stops_the_consumer() -> None:
    outputs = FakeProducer.acknowledging(refuse=1, error=ConnectionResetError("gone"))
    client = _log(p0=3, p1=0)
    with pytest.raises(ServiceFailed) as stopped:
        run_until(_plan(ordering="key"), client, copy, lambda: False, outputs=outputs)

    assert stopped.value.reason == "output_failed"
    assert "an output to out failed: ConnectionResetError: gone" in stopped.value.detail
    assert client.committed() == {}


@pytest.mark.parametrize(
    ("returned", "error"),
    [
        ("text", "TypeError: the handler returned str: return None, an Output, or a list"),
        ([Output(b"v"), b"v"], "TypeError: the handler returned list"),
        (Output("text"), "TypeError: Output.value is str: bytes or None"),  # type: ignore[arg-type]
        (Output(b"v", headers=[("h", "text")]), "TypeError: Output.headers holds"),  # type: ignore[list-item]
    ],
)
def test_what_is_no_output_fails_the_call_and_is_dead_lettered(
    returned: object, error: str
) -> None:
    client, outputs, letters = (
        _log(1, 0),
        FakeProducer.acknowledging(),
        FakeProducer.acknowledging(),
    )
    run_until(_plan(), client, lambda record: returned, lambda: len(letters.sent) == 1,
              outputs=outputs, dead_letters=letters)  # fmt: skip

    assert outputs.sent == []
    letter = letters.sent[0]
    said = f"{letter.header('dlt.exception.type')}: {letter.header('dlt.exception.message')}"
    assert said.startswith(error)
    assert client.committed() == {P0: 1}


def test_an_output_with_no_topic_and_no_output_topic_fails_the_call() -> None:
    client, outputs, letters = (
        _log(1, 0),
        FakeProducer.acknowledging(),
        FakeProducer.acknowledging(),
    )
    run_until(_plan(output_topic=None), client, copy, lambda: len(letters.sent) == 1,
              outputs=outputs, dead_letters=letters)  # fmt: skip

    assert letters.sent[0].header("dlt.exception.message") == (
        "the handler returned an Output without a topic, and CONSUMER_OUTPUT_TOPIC is not set"
    )


def test_a_batch_publishes_its_outputs_and_those_before_the_record_it_names() -> None:
    @batch
    def copies(records_: Sequence[Handled]) -> list[Output]:
        done = [copy(r) for r in records_ if r.offset != 2]
        if len(done) < len(records_):
            raise BatchFailed(2, ValueError("poison"), outputs=done[:2])
        return done

    client, outputs = _log(5, 0), FakeProducer.acknowledging()
    letters = FakeProducer.acknowledging()
    run_until(_plan(), client, copies, lambda: len(outputs.sent) == 4, outputs=outputs,
              dead_letters=letters)  # fmt: skip

    assert sorted(f.header("input") for f in outputs.sent) == ["0/0", "0/1", "0/3", "0/4"]
    assert [f.header("dlt.original.offset") for f in letters.sent] == ["2"]
    assert client.committed() == {P0: 5}


def test_an_outputs_traceparent_is_a_child_of_its_inputs_process_span() -> None:
    recorder = SpanRecorder()
    try:
        client, outputs = _log(1, 0), FakeProducer.acknowledging()
        run_until(_plan(), client, copy, lambda: len(outputs.sent) == 1, outputs=outputs,
                  tracing=recorder.tracing)  # fmt: skip
        (process,) = [s for s in recorder.spans() if s.name.startswith("process")]
    finally:
        recorder.close()
    context = process.get_span_context()
    # 00-<trace id>-<parent id>-<flags>: the output's parent is the input's process span.
    assert outputs.sent[0].header("traceparent").split("-")[1:3] == [
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
    ]


def test_the_output_topic_must_exist_at_start() -> None:
    outputs = Outputs(OUT, lambda: FakeProducer(topics={TOPIC}), timeout_s=1.0)
    with pytest.raises(ServiceFailed) as refused:
        outputs.start()
    assert refused.value.reason == "output_topic_missing"
    assert refused.value.detail.startswith(f"CONSUMER_OUTPUT_TOPIC={OUT} does not exist")


def test_the_output_topic_cannot_be_the_topic_consumed() -> None:
    with pytest.raises(ConfigError) as refused:
        _plan(output_topic=TOPIC)
    assert refused.value.problems == [
        f"CONSUMER_OUTPUT_TOPIC={TOPIC} is the topic consumed: each output would come back "
        "to the handler that wrote it"
    ]
