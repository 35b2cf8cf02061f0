"""The consumer's loop, broker-free against common.testing's stand-ins and a clock moved
by hand: a batch over its time budget is cut short and sought back, a stop mid-batch
commits what was done, and a consumer the group expels mid-batch stops working on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import structlog
from kafka.structs import MemberState

from common.clients.testing import FakeConsumer, Record, TopicPartition, records
from common.config import ConsumerPlan, ConsumerSettings, load, resolve
from common.health import Health
from common.shutdown import Shutdown
from common.testing import ManualClock
from consumer import metrics
from consumer.service import ConsumerService

TOPIC = "t"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@pytest.fixture(autouse=True)
def _logs_captured() -> Iterator[None]:
    """The loop's lines are captured: another test may have pointed structlog elsewhere."""
    with structlog.testing.capture_logs():
        yield


def _plan(**settings: object) -> ConsumerPlan:
    return resolve(
        load(
            ConsumerSettings,
            {
                "bootstrap_servers": "127.0.0.1:9",
                "topic": TOPIC,
                "group_id": "g",
                "log_message_every": 0,
                **settings,
            },
        )
    )


def _run(
    client: FakeConsumer, shutdown: Shutdown, clock: Callable[[], float], **settings: object
) -> ConsumerService:
    client.after_script = shutdown.event.set  # the script played: stop
    service = ConsumerService(_plan(**settings), client, Health(), shutdown, clock=clock)
    service.run()
    return service


def test_a_batch_over_its_time_budget_is_cut_short_and_the_rest_sought_back() -> None:
    shutdown = Shutdown()
    # Each read of the clock is a second later: the poll interval of 10 s gives
    # the batch a budget of 5 s, so it stops after a few of its 100 records.
    clock = ManualClock(step=1.0)
    client = FakeConsumer(TOPIC, polls=[{P0: records(TOPIC, 0, range(100))}])
    _run(client, shutdown, clock, max_poll_interval_ms=10_000, session_timeout_ms=6_000)

    ((partition, offset),) = client.seeks
    assert partition == P0
    assert 0 < offset < 100
    # Committed exactly what was processed: the next to read is the one sought to.
    assert client.committed() == {P0: offset}


def test_a_stop_mid_batch_commits_what_was_done_and_leaves_the_group() -> None:
    shutdown = Shutdown()
    processed = records(TOPIC, 0, range(3))
    client = FakeConsumer(TOPIC, polls=[{P0: processed + records(TOPIC, 0, range(3, 10))}])
    clock = ManualClock()
    reads = 0

    def stop_after_three_records() -> float:
        # The loop reads the clock once per record after its start: stop after 3.
        nonlocal reads
        reads += 1
        if reads == 4:
            shutdown.event.set()
        return clock()

    _run(client, shutdown, stop_after_three_records)
    assert client.committed() == {P0: 3}
    assert client.closed


def test_a_consumer_expelled_mid_batch_stops_before_the_next_partition() -> None:
    shutdown = Shutdown()
    client = FakeConsumer(
        TOPIC, polls=[{P0: records(TOPIC, 0, range(5)), P1: records(TOPIC, 1, range(5))}]
    )
    clock = ManualClock()
    reads = 0

    def expelled_meanwhile() -> float:
        # The heartbeat thread hears the group dropped us while P0's last record is
        # processed (the loop reads the clock once at start and once per record),
        # and marks us unjoined, as kafka-python's reset_generation does.
        nonlocal reads
        reads += 1
        if reads == 6:
            client.membership.state = MemberState.UNJOINED
        return clock()

    _run(client, shutdown, expelled_meanwhile)
    # P0's records were done and are offered for commit (the group will refuse it);
    # P1's belong to another member now: not one was processed, and P1 is sought
    # back to its first, should the group have kept us after all.
    assert client.committed() == {P0: 5}
    assert client.seeks == [(P1, 0)]


@pytest.mark.parametrize(("returned", "measured"), [(10, 10), (64, 32), (640, 59)])
def test_latency_is_measured_on_every_record_of_a_small_poll_and_a_sample_of_a_large(
    returned: int, measured: int
) -> None:
    """At most about LATENCY_SAMPLES_PER_POLL latencies a poll, spread over it."""
    topic = f"latency-{returned}"
    sent_ms = int(time.time() * 1000) - 2_000
    batch = [Record(topic, 0, offset, timestamp=sent_ms) for offset in range(returned)]
    client = FakeConsumer(topic, polls=[{TopicPartition(topic, 0): batch}])
    shutdown = Shutdown()
    client.after_script = shutdown.event.set
    plan = _plan(topic=topic)
    ConsumerService(plan, client, Health(), shutdown, clock=ManualClock()).run()

    counts, total = metrics.END_TO_END.labels(topic).snapshot()
    assert sum(counts) == measured == len(range(0, returned, 1 + returned // 64))
    assert total / measured >= 2.0  # sent two seconds ago, at least
    assert client.committed() == {TopicPartition(topic, 0): returned}  # every record handled
