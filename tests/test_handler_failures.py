"""What happens when your handler fails, broker-free on common.testing's stand-ins: a
failure is retried later with its partition paused, in order; a refused record or one
whose retries are spent is dead-lettered with its origin, and only then committed; a
dependency that is down is waited for, never dead-lettered; without a dead-letter topic
the consumer stops, everything before the record committed and nothing after it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka.errors import KafkaTimeoutError

from common.clients.testing import (
    FakeProducer,
    LogConsumer,
    Record,
    TopicPartition,
    records,
)
from common.config import ConsumerPlan, ConsumerSettings, load, resolve
from common.failure import ServiceFailed
from common.health import Health
from common.shutdown import Shutdown
from common.testing import ManualClock
from consumer import dead_letter
from consumer.dead_letter import DeadLetters
from consumer.handler import DependencyUnavailable, RecordRefused
from consumer.handler import Record as Handled
from consumer.service import ConsumerService

TOPIC = "t"
#: How long a dead letter's write may take, as kafka-python's delivery timeout says.
DELIVERY_TIMEOUT_S = 60.0
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "retry_attempts": 3,
                "retry_backoff_ms": 1_000,
                **settings,
            },
        )
    )


class Recorder:
    """A handler that notes each call, and fails as *fails* says for a record."""

    def __init__(self, fails: Callable[[Handled, int], BaseException | None]) -> None:
        self._fails = fails
        self.calls: list[tuple[int, int]] = []  # (partition, offset), in call order

    def __call__(self, record: Handled) -> None:
        self.calls.append((record.partition, record.offset))
        tries = self.calls.count((record.partition, record.offset))
        error = self._fails(record, tries)
        if error is not None:
            raise error

    def handled(self, partition: int) -> list[int]:
        """Offsets of *partition* in call order, each time it was called."""
        return [offset for p, offset in self.calls if p == partition]


def _run(
    client: LogConsumer,
    handler: Recorder,
    dead_letters: FakeProducer | None = None,
    health: Health | None = None,
    **settings: object,
) -> ConsumerService:
    shutdown = Shutdown()
    client.after_script = shutdown.event.set  # every record read: stop
    clock = client.clock
    assert clock is not None
    letters = None
    if dead_letters is not None:
        letters = DeadLetters("dlt", "g", lambda: dead_letters, timeout_s=DELIVERY_TIMEOUT_S)
        letters.start()
    service = ConsumerService(
        _plan(**settings),
        client,
        health or Health(),
        shutdown,
        handler=handler,
        dead_letters=letters,
        clock=clock,
    )
    service.run()
    return service


def _consumer(**logs: list[Record]) -> LogConsumer:
    by_partition = {TopicPartition(TOPIC, int(name[1:])): log for name, log in logs.items()}
    return LogConsumer(TOPIC, polls=[], logs=dict(by_partition), clock=ManualClock())


def test_a_transient_failure_is_retried_later_in_order_and_handled_once(
    logs: list[dict[str, object]],
) -> None:
    client = _consumer(p0=records(TOPIC, 0, range(5)), p1=records(TOPIC, 1, range(3)))
    handler = Recorder(
        lambda r, tries: (
            OSError("busy") if (r.partition, r.offset, tries) in {(0, 2, 1), (0, 2, 2)} else None
        )
    )
    _run(client, handler)

    # Offset 2 failed twice; 3 and 4 waited for it; nothing was skipped or reordered.
    assert handler.handled(0) == [0, 1, 2, 2, 2, 3, 4]
    assert handler.handled(1) == [0, 1, 2]  # the other partition never waited
    assert client.committed() == {P0: 5, P1: 3}
    retrying = [e for e in logs if e["event"] == "handler.retrying"]
    assert [(e["offset"], e["attempt"]) for e in retrying] == [(2, 1), (2, 2)]
    assert retrying[0]["retry_in_s"] >= 1.0
    assert retrying[1]["retry_in_s"] >= 2.0  # the one backoff policy: doubled
    assert not client.pausing


def test_a_refused_record_is_dead_lettered_at_once_with_its_origin(
    logs: list[dict[str, object]],
) -> None:
    log = [
        Record(TOPIC, 0, 0),
        Record(TOPIC, 0, 1, b"poison", b"k", 1700000000000, (("trace", b"abc"),)),
        Record(TOPIC, 0, 2),
    ]
    client = _consumer(p0=log)
    handler = Recorder(lambda r, _: RecordRefused("bad schema") if r.value == b"poison" else None)
    dlt = FakeProducer.acknowledging()
    _run(client, handler, dlt)

    assert handler.handled(0) == [0, 1, 2]  # refused: no retry
    (letter,) = dlt.sent
    assert (letter.topic, letter.key, letter.payload) == ("dlt", b"k", b"poison")
    assert letter.headers[0] == ("trace", b"abc")  # the original's headers first
    assert letter.header(dead_letter.ORIGINAL_TOPIC) == TOPIC
    assert letter.header(dead_letter.ORIGINAL_PARTITION) == "0"
    assert letter.header(dead_letter.ORIGINAL_OFFSET) == "1"
    assert letter.header(dead_letter.ORIGINAL_TIMESTAMP) == "1700000000000"
    assert letter.header(dead_letter.CONSUMER_GROUP) == "g"
    assert letter.header(dead_letter.EXCEPTION_TYPE) == "consumer.handler.RecordRefused"
    assert letter.header(dead_letter.EXCEPTION_MESSAGE) == "bad schema"
    assert letter.header(dead_letter.ATTEMPTS) == "1"
    assert client.committed() == {P0: 3}
    (line,) = [e for e in logs if e["event"] == "record.dead_lettered"]
    assert (line["offset"], line["dead_letter_topic"], line["attempts"]) == (1, "dlt", 1)
    assert "poison" not in str(line)  # coordinates, never the value


def test_a_record_whose_retries_are_spent_is_dead_lettered_and_the_rest_goes_on() -> None:
    client = _consumer(p0=records(TOPIC, 0, range(3)))
    handler = Recorder(lambda r, _: ValueError("no") if r.offset == 1 else None)
    dlt = FakeProducer.acknowledging()
    _run(client, handler, dlt, retry_attempts=3)

    assert handler.handled(0) == [0, 1, 1, 1, 2]
    assert [letter.header(dead_letter.ATTEMPTS) for letter in dlt.sent] == ["3"]
    assert dlt.sent[0].header(dead_letter.EXCEPTION_TYPE) == "ValueError"
    assert client.committed() == {P0: 3}


def test_a_dead_letter_the_broker_refuses_holds_everything_after_it(
    logs: list[dict[str, object]],
) -> None:
    client = _consumer(p0=records(TOPIC, 0, range(4)))
    handler = Recorder(lambda r, _: RecordRefused("no") if r.offset == 1 else None)
    dlt = FakeProducer.acknowledging(refuse=2, error=KafkaTimeoutError("acks missing"))
    committed_while_refusing: list[dict[TopicPartition, int]] = []
    original_send = dlt.send

    def send(*args: object, **kwargs: object) -> object:
        if len(dlt.sent) < 2:  # the two refused
            committed_while_refusing.append(client.committed())
        return original_send(*args, **kwargs)  # type: ignore[arg-type]

    dlt.send = send  # type: ignore[method-assign]
    _run(client, handler, dlt)

    # The handler gave up once; only the dead letter was tried again, until it was taken.
    assert handler.handled(0) == [0, 1, 2, 3]
    assert len(dlt.written()) == 1
    assert all(c.get(P0, 0) <= 1 for c in committed_while_refusing)
    assert client.committed() == {P0: 4}
    failed = [e for e in logs if e["event"] == "record.dead_letter_failed"]
    assert len(failed) == 2
    assert "acks missing" in str(failed[0]["error"])


def test_a_slow_dead_letter_never_holds_the_loop_past_the_batch_time(
    logs: list[dict[str, object]],
) -> None:
    """Acknowledgements slower than half the poll interval: the loop waits for each only
    what is left of its batch's time, and waits again later on the same write."""
    client = _consumer(p0=records(TOPIC, 0, range(6)))
    handler = Recorder(lambda r, _: RecordRefused("no") if r.offset in {1, 2} else None)
    assert client.clock is not None
    dlt = FakeProducer.acknowledging(clock=client.clock, after_s=12.0)
    _run(client, handler, dlt, max_poll_interval_ms=10_000)  # 5 s for a batch

    assert handler.handled(0) == [0, 1, 2, 3, 4, 5]
    # Each record written once, whatever the waits: an answer still to come is waited on.
    assert [letter.header(dead_letter.ORIGINAL_OFFSET) for letter in dlt.sent] == ["1", "2"]
    assert client.committed() == {P0: 6}
    assert len(dlt.waits) >= 6
    assert all(wait is not None and wait <= 5.0 for wait in dlt.waits)
    unanswered = [e for e in logs if e["event"] == "record.dead_letter_failed"]
    assert unanswered
    assert all("not acknowledged within" in str(e["error"]) for e in unanswered)
    assert [e["offset"] for e in logs if e["event"] == "record.dead_lettered"] == [1, 2]


def test_a_dependency_that_is_down_is_waited_for_and_never_dead_lettered(
    logs: list[dict[str, object]],
) -> None:
    client = _consumer(p0=records(TOPIC, 0, range(2)))
    down_for = 8  # far more tries than CONSUMER_RETRY_ATTEMPTS
    handler = Recorder(
        lambda r, tries: (
            DependencyUnavailable("db restarting") if r.offset == 0 and tries <= down_for else None
        )
    )
    dlt = FakeProducer.acknowledging()
    _run(client, handler, dlt, retry_attempts=2, retry_backoff_max_ms=4_000)

    assert handler.handled(0) == [0] * (down_for + 1) + [1]
    assert dlt.sent == []
    waits = [e["retry_in_s"] for e in logs if e["event"] == "handler.retrying"]
    assert all(e["until_it_works"] for e in logs if e["event"] == "handler.retrying")
    assert max(waits) <= 4.0 * 1.1  # capped by CONSUMER_RETRY_BACKOFF_MAX_MS
    assert client.committed() == {P0: 2}


def test_without_a_dead_letter_topic_the_consumer_stops_on_the_record(
    logs: list[dict[str, object]],
) -> None:
    client = _consumer(p0=records(TOPIC, 0, range(5)), p1=records(TOPIC, 1, range(2)))
    handler = Recorder(
        lambda r, _: ValueError("broken") if (r.partition, r.offset) == (0, 3) else None
    )
    health = Health()
    with pytest.raises(ServiceFailed) as failed:
        _run(client, handler, health=health, retry_attempts=2)

    assert failed.value.reason == "handler_failed"
    assert not health.ready
    assert health.reason == f"stopping: the handler failed on {TOPIC}[0]@3"  # /readyz says so
    assert handler.handled(0) == [0, 1, 2, 3, 3]
    # Everything before it committed, nothing after it handled; the group is left.
    assert client.committed()[P0] == 3
    assert client.closed
    (line,) = [e for e in logs if e["event"] == "handler.failed"]
    assert (line["topic"], line["partition"], line["offset"], line["attempts"]) == (TOPIC, 0, 3, 2)
    assert "ValueError: broken" in str(line["error"])


def test_a_missing_dead_letter_topic_is_refused_at_start() -> None:
    letters = DeadLetters("dlt", "g", lambda: FakeProducer(topics=()), 1.0)
    with pytest.raises(ServiceFailed) as failed:
        letters.start()
    assert failed.value.reason == "dead_letter_topic_missing"
    assert "never created" in failed.value.detail


def test_a_rebalance_that_forgets_the_pause_does_not_hurry_the_retry() -> None:
    client = _consumer(p0=records(TOPIC, 0, range(2)))
    clock = client.clock
    assert clock is not None
    times: list[float] = []

    def fails_once(record: Handled, tries: int) -> BaseException | None:
        times.append(clock.now)
        return OSError("busy") if record.offset == 0 and tries == 1 else None

    poll = client.poll
    rebalanced = False

    def rebalancing_poll(timeout_ms: int, max_records: int | None = None) -> object:
        # An eager rebalance right after the failure: kafka-python rebuilds the
        # assignment, and the pause is lost.
        nonlocal rebalanced
        if client.pausing and not rebalanced:
            rebalanced = True
            client.pausing.clear()
        return poll(timeout_ms, max_records)

    client.poll = rebalancing_poll  # type: ignore[method-assign,assignment]
    handler = Recorder(fails_once)
    _run(client, handler)

    assert rebalanced
    assert handler.handled(0) == [0, 0, 1]
    assert times[1] - times[0] >= 1.0  # CONSUMER_RETRY_BACKOFF_MS, however often it came back
    assert client.committed() == {P0: 2}


def test_records_held_back_for_a_retry_do_not_shrink_the_batches(
    logs: list[dict[str, object]],
) -> None:
    client = _consumer(p0=records(TOPIC, 0, range(50)))
    handler = Recorder(lambda r, tries: OSError("busy") if r.offset == 0 and tries == 1 else None)
    _run(client, handler)

    assert handler.handled(0) == [0, *range(50)]
    # Not a batch too slow for the poll interval: nothing was cut short for time.
    assert [e for e in logs if e["event"] == "batch.truncated"] == []
