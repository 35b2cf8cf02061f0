"""What a batch handler is promised, broker-free on common.testing's stand-ins
(docs/handlers.md, "Batches"): records of one partition in offset order, at most
CONSUMER_BATCH_MAX_RECORDS, a short batch waiting for more up to the batch wait; a failed
batch retried as a batch, then its records one at a time so that only the bad one is
dead-lettered; a record named by BatchFailed handled alone; without a dead-letter topic a
stop that commits only what came before; mismatched settings refused at start."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import pytest
from prometheus_client import REGISTRY

from common.clients.testing import (
    FakeConsumer,
    FakeProducer,
    LogConsumer,
    Record,
    TopicPartition,
    records,
)
from common.config import ConsumerPlan, ConsumerSettings, load, resolve
from common.failure import ServiceFailed
from common.testing import SpanRecorder
from common.tracing import Tracing
from consumer.handler import (
    BatchFailed,
    DependencyUnavailable,
    HandlerInvalid,
    RecordRefused,
    batch,
    check_fits,
)
from consumer.handler import Record as Handled
from tests.loops import run_until
from tests.offline import one_line, run

TOPIC = "t"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


#: Every test's lines captured: the loops and workers write none elsewhere.
pytestmark = pytest.mark.usefixtures("logs")


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "retry_attempts": 2,
                "retry_backoff_ms": 1,
                "retry_backoff_max_ms": 1,
                **settings,
            },
        )
    )


class Batches:
    """A batch handler that notes each call's (partition, offsets), and fails as told."""

    def __init__(self, fails: Callable[[Sequence[Handled]], BaseException | None]) -> None:
        self._fails = fails
        self._lock = threading.Lock()
        self.calls: list[tuple[int, list[int]]] = []
        self.done: set[tuple[int, int]] = set()

    def __call__(self, batch_: Sequence[Handled]) -> None:
        with self._lock:
            self.calls.append((batch_[0].partition, [r.offset for r in batch_]))
        error = self._fails(batch_)
        if error is not None:
            raise error
        with self._lock:
            self.done |= {(r.partition, r.offset) for r in batch_}


def _run(
    client: FakeConsumer,
    handler: Batches,
    until: Callable[[], bool],
    *,
    dead_letters: FakeProducer | None = None,
    tracing: Tracing | None = None,
    **settings: object,
) -> None:
    run_until(
        _plan(**settings), client, batch(handler), until, dead_letters=dead_letters,
        tracing=tracing,
    )  # fmt: skip


def _log(**logs: list[Record]) -> LogConsumer:
    by_partition = {TopicPartition(TOPIC, int(name[1:])): log for name, log in logs.items()}
    return LogConsumer(TOPIC, polls=[], logs=dict(by_partition))


def _retried() -> float:
    labels = {"messaging_destination_name": TOPIC, "outcome": "retried"}
    return REGISTRY.get_sample_value("consumer_handled_records_total", labels) or 0.0


def _poison(*offsets: int) -> Callable[[Sequence[Handled]], BaseException | None]:
    return lambda b: ValueError("poison") if any(r.offset in offsets for r in b) else None


def test_batches_are_one_partitions_records_in_order_up_to_the_size() -> None:
    handler = Batches(lambda b: None)
    client = _log(p0=records(TOPIC, 0, range(10)), p1=records(TOPIC, 1, range(4)))
    _run(client, handler, lambda: len(handler.done) == 14, batch_max_records=4)

    by_partition = {p: [offsets for q, offsets in handler.calls if q == p] for p in (0, 1)}
    assert by_partition[0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert by_partition[1] == [[0, 1, 2, 3]]
    assert client.committed() == {P0: 10, P1: 4}


def test_a_short_batch_waits_for_more_within_the_batch_wait() -> None:
    handler = Batches(lambda b: None)
    polls: list[Mapping[TopicPartition, Sequence[Record]]] = [
        {P0: records(TOPIC, 0, range(3))},
        {P0: records(TOPIC, 0, range(3, 5))},
    ]
    client = FakeConsumer(TOPIC, polls=list(polls))
    _run(client, handler, lambda: len(handler.done) == 5, batch_max_records=5,
         batch_max_wait_ms=60_000)  # fmt: skip

    assert handler.calls == [(0, [0, 1, 2, 3, 4])]


def test_without_a_wait_each_poll_is_its_own_batch() -> None:
    handler = Batches(lambda b: None)
    client = FakeConsumer(
        TOPIC, polls=[{P0: records(TOPIC, 0, range(3))}, {P0: records(TOPIC, 0, range(3, 5))}]
    )
    _run(client, handler, lambda: len(handler.done) == 5, batch_max_records=5)

    assert handler.calls == [(0, [0, 1, 2]), (0, [3, 4])]


def test_a_failing_batch_is_retried_then_handed_over_one_at_a_time(
    logs: list[dict[str, object]],
) -> None:
    letters = FakeProducer.acknowledging()
    handler = Batches(_poison(2))
    client = _log(p0=records(TOPIC, 0, range(5)))
    before = _retried()
    _run(client, handler, lambda: client.committed().get(P0) == 5, dead_letters=letters)

    # The batch twice (CONSUMER_RETRY_ATTEMPTS=2), then each record alone; 2 fails its
    # own two tries and is dead-lettered, the others are handled.
    assert handler.calls[:2] == [(0, [0, 1, 2, 3, 4])] * 2
    assert handler.calls[2:] == [(0, [0]), (0, [1]), (0, [2]), (0, [2]), (0, [3]), (0, [4])]
    assert handler.done == {(0, 0), (0, 1), (0, 3), (0, 4)}
    assert [letter.header("dlt.original.offset") for letter in letters.sent] == ["2"]
    retrying = [e for e in logs if e["event"] == "handler.retrying"]
    assert retrying[0]["records"] == 5
    # Each record of the batch retried once, then 2 once more on its own.
    assert _retried() - before == 5 + 1


def test_a_record_the_handler_names_is_handled_alone_and_the_rest_as_a_batch() -> None:
    letters = FakeProducer.acknowledging()

    def names_it(b: Sequence[Handled]) -> BaseException | None:
        offsets = [r.offset for r in b]
        if 3 in offsets:
            return BatchFailed(offsets.index(3), RecordRefused("not an order"))
        return None

    handler = Batches(names_it)
    client = _log(p0=records(TOPIC, 0, range(6)))
    _run(client, handler, lambda: client.committed().get(P0) == 6, dead_letters=letters)

    assert handler.calls == [(0, [0, 1, 2, 3, 4, 5]), (0, [3]), (0, [4, 5])]
    assert handler.done == {(0, o) for o in (4, 5)}  # 0..2 done by the first call
    assert [letter.header("dlt.original.offset") for letter in letters.sent] == ["3"]


def test_a_dependency_down_retries_the_batch_until_it_works() -> None:
    tries = iter(range(100))
    handler = Batches(lambda b: DependencyUnavailable("db") if next(tries) < 4 else None)
    client = _log(p0=records(TOPIC, 0, range(3)))
    _run(client, handler, lambda: client.committed().get(P0) == 3)

    assert handler.calls == [(0, [0, 1, 2])] * 5  # never handed over one at a time


def test_without_a_dead_letter_topic_the_consumer_stops_before_the_bad_record() -> None:
    handler = Batches(_poison(2))
    client = _log(p0=records(TOPIC, 0, range(5)))
    with pytest.raises(ServiceFailed) as stopped:
        _run(client, handler, lambda: False)

    assert stopped.value.reason == "handler_failed"
    assert client.committed()[P0] == 2


@batch
def _a_batch_handler(records_: Sequence[Handled]) -> None:
    """A batch handler for the checks below."""


def _one_record(record: Handled) -> None:
    """A handler of one record."""


@pytest.mark.parametrize(
    ("handler", "ordering", "batch_settings", "said"),
    [
        (_one_record, "partition", ["CONSUMER_BATCH_MAX_RECORDS"], "mark it @consumer"),
        (_a_batch_handler, "key", [], "CONSUMER_ORDERING=partition"),
    ],
)
def test_a_handler_that_does_not_fit_the_settings_is_refused(
    handler: Callable[..., object], ordering: str, batch_settings: list[str], said: str
) -> None:
    with pytest.raises(HandlerInvalid, match=said):
        check_fits(handler, ordering=ordering, batch_settings=batch_settings)
    check_fits(handler, ordering="partition", batch_settings=[])  # fits without them


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"CONSUMER_HANDLER": "tests.handlers:refuse_poison", "CONSUMER_BATCH_MAX_RECORDS": "9"},
            "CONSUMER_BATCH_MAX_RECORDS is set, and CONSUMER_HANDLER takes one record",
        ),
        (
            {"CONSUMER_HANDLER": "tests.handlers:async_batches"},
            "an async def batch handler",
        ),
    ],
)
def test_at_start_a_mismatch_is_one_line_and_exit_2(env: dict[str, str], said: str) -> None:
    result = run("consumer", **env)

    assert result.returncode == 2
    line = one_line(result, "service.failed")
    assert line["reason"] == "handler_invalid"
    assert said in str(line["error"])


def test_a_batch_is_one_process_span_linked_to_each_records_trace() -> None:
    recorder = SpanRecorder()
    try:
        traced = [
            Record(
                TOPIC, 0, n, headers=(("traceparent", f"00-{n + 1:032x}-{n + 1:016x}-01".encode()),)
            )
            for n in range(3)
        ]
        handler = Batches(lambda b: None)
        client = _log(p0=traced)
        _run(client, handler, lambda: len(handler.done) == 3, tracing=recorder.tracing)
        spans = recorder.spans()
    finally:
        recorder.close()

    (span,) = [s for s in spans if s.name == f"process {TOPIC}"]
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 3
    assert span.parent is None
    assert [link.context.trace_id for link in span.links] == [1, 2, 3]
