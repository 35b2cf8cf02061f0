"""The producer's loop, broker-free against common.testing's stand-ins and a clock moved
by hand: a stall fails each unanswered send once and replaces the client, and the
paced loop waits for its next send rather than spinning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from common import events
from common.clients import ProducerClient
from common.clients.testing import FakeProducer, FakeSendFuture
from common.config import ProducerPlan, ProducerSettings, load, resolve
from common.health import Health
from common.shutdown import Shutdown
from common.testing import ManualClock
from producer.service import ProducerService


@pytest.fixture(autouse=True)
def _logs_captured() -> Iterator[None]:
    """The loop's lines are captured: another test may have pointed structlog elsewhere."""
    with structlog.testing.capture_logs():
        yield


def _plan(**settings: object) -> ProducerPlan:
    return resolve(
        load(
            ProducerSettings,
            {"bootstrap_servers": "127.0.0.1:9", "topic": "t", "log_message_every": 0, **settings},
        )
    )


def test_a_stall_fails_each_unanswered_send_once_and_replaces_the_client() -> None:
    shutdown = Shutdown()
    stalled = FakeProducer()  # answers nothing, ever: kafka-python 3.0.12's stuck producer

    def answer_then_stop(future: FakeSendFuture) -> None:
        future.succeed()
        shutdown.event.set()

    replacement = FakeProducer(on_send=answer_then_stop)
    clients: Iterator[ProducerClient] = iter([stalled, replacement])
    # A second per read of the clock: the deadline of 155 s passes within a few bursts.
    clock = ManualClock(step=1.0)
    service = ProducerService(_plan(rate=0), lambda: next(clients), Health(), shutdown, clock=clock)
    with structlog.testing.capture_logs() as logs:
        service.run()

    names = [log["event"] for log in logs]
    assert names.count(events.PRODUCER_STALLED) == 1
    failed = [log["seq"] for log in logs if log["event"] == events.MESSAGE_FAILED]
    assert len(stalled.sent) > 0
    assert sorted(failed) == list(range(1, len(stalled.sent) + 1))  # each once
    assert stalled.closed
    assert replacement.sent  # sends went on with the new client


class _SimulatedTime(Shutdown):
    """A stop request whose waits move the clock instead of taking time; it stops at *end*."""

    def __init__(self, clock: ManualClock, end: float) -> None:
        super().__init__()
        self.clock, self.end, self.waits = clock, end, 0

    def wait(self, seconds: float) -> bool:
        self.waits += 1
        self.clock.advance(seconds)
        if self.clock.now >= self.end:
            self.event.set()
        return self.event.is_set()


def test_the_paced_loop_waits_for_its_next_send_rather_than_spinning() -> None:
    clock = ManualClock()
    shutdown = _SimulatedTime(clock, end=clock.now + 10.0)
    client = FakeProducer(on_send=lambda future: future.succeed())
    service = ProducerService(_plan(rate=10), lambda: client, Health(), shutdown, clock=clock)
    with structlog.testing.capture_logs():  # not into another test's stdout
        service.run()

    assert 99 <= len(client.sent) <= 101  # 10 a second for 10 s
    # One wait per paced send (two with rounding), not thousands of empty turns.
    assert shutdown.waits <= 2 * len(client.sent) + 5


class _ClosesWithoutAnswering(FakeProducer):
    """A client whose close leaves its sends unanswered (a broker gone for good)."""

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_sends_still_unanswered_at_close_are_each_counted_failed_once() -> None:
    shutdown = Shutdown()
    client = _ClosesWithoutAnswering(on_send=lambda _future: shutdown.event.set())
    service = ProducerService(_plan(rate=0), lambda: client, Health(), shutdown)
    with structlog.testing.capture_logs() as logs:
        service.run()

    failed = [log["seq"] for log in logs if log["event"] == events.MESSAGE_FAILED]
    assert client.sent
    assert sorted(failed) == list(range(1, len(client.sent) + 1))
    assert all(
        "unanswered when the producer closed" in str(log["error"])
        for log in logs
        if log["event"] == events.MESSAGE_FAILED
    )
