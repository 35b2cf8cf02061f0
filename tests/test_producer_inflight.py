"""The producer keeps count of every unanswered send: bounded, answered once, stalls noticed."""

from __future__ import annotations

import threading
import time

from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata

from producer.inflight import (
    MAX_UNANSWERED,
    MAX_UNANSWERED_BYTES,
    MIN_UNANSWERED,
    STALL_CHECK_S,
    InFlight,
    limit_for,
)
from tests.conftest import ManualClock


def batch(inflight: InFlight, *seqs: int) -> FutureProduceResult:
    """Send *seqs* into one batch, as kafka-python does; completing it answers them all."""
    produce = FutureProduceResult(("t", 0))
    for index, seq in enumerate(seqs):
        record = FutureRecordMetadata(produce, index, -1, None, 3, 100, -1)
        inflight.sent(seq, record)
    return produce


def test_answers_are_taken_with_their_latency(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=60, clock=clock)
    failed = batch(inflight, 1)
    written = batch(inflight, 2, 3)
    clock.now += 0.25
    written.success((7, -1, None))  # base offset, log append time, no record errors
    failed.failure(KafkaTimeoutError("expired"))

    taken = list(inflight.take())

    assert [(seq, latency) for seq, latency, _ in taken] == [(1, 0.25), (2, 0.25), (3, 0.25)]
    assert isinstance(taken[0][2], KafkaTimeoutError)
    assert [getattr(outcome, "offset", None) for _, _, outcome in taken] == [None, 7, 8]
    assert len(inflight) == 0
    assert not inflight.has_answers


def test_answers_are_taken_in_send_order() -> None:
    inflight = InFlight(stall_after_s=60)
    first = batch(inflight, 1)
    batch(inflight, 2).success((0, -1, None))

    # The second is answered, the first is not: nothing yet, and both stay counted.
    assert not inflight.has_answers
    assert list(inflight.take()) == []
    assert len(inflight) == 2

    first.success((0, -1, None))
    assert [seq for seq, _, _ in inflight.take()] == [1, 2]


def test_the_bound_says_when_to_wait() -> None:
    inflight = InFlight(stall_after_s=60, limit=3)
    first = batch(inflight, 1)
    batch(inflight, 2)
    assert inflight.room == 1
    batch(inflight, 3)
    assert inflight.room == 0
    first.success((0, -1, None))
    list(inflight.take())
    assert inflight.room == 1


def test_a_full_bound_has_room_again_once_a_quarter_of_it_is_answered() -> None:
    """Sends go again in bursts, not one per answer: each wait for an answer costs a wakeup."""
    inflight = InFlight(stall_after_s=60, limit=8)
    answers = [batch(inflight, seq) for seq in range(1, 9)]
    assert inflight.room == 0

    answers[0].success((0, -1, None))
    list(inflight.take())
    assert (len(inflight), inflight.room) == (7, 0)

    answers[1].success((1, -1, None))
    list(inflight.take())
    assert (len(inflight), inflight.room) == (6, 2)


def test_wait_returns_once_the_oldest_is_answered() -> None:
    inflight = InFlight(stall_after_s=60)
    oldest = batch(inflight, 1)
    batch(inflight, 2).success((0, -1, None))
    waiter_done = threading.Event()

    def loop() -> None:
        inflight.wait(timeout=30)
        waiter_done.set()

    waiter = threading.Thread(target=loop)
    waiter.start()
    # A later answer does not wake it: there is nothing to take before the oldest.
    assert not waiter_done.wait(0.2), "woken by an answer behind the oldest"
    # As kafka-python's IO thread does: the answer arrives while the loop waits.
    oldest.success((0, -1, None))
    assert waiter_done.wait(10), "the loop was not woken by the oldest answer"
    waiter.join()
    assert [seq for seq, _, _ in inflight.take()] == [1, 2]


def test_wait_returns_on_a_failure_too() -> None:
    inflight = InFlight(stall_after_s=60)
    batch(inflight, 1).failure(KafkaTimeoutError("expired"))

    inflight.wait(timeout=30)  # would take 30 s, or raise, if a failure did not count

    assert inflight.has_answers


def test_wait_gives_up_after_its_timeout() -> None:
    inflight = InFlight(stall_after_s=60)
    batch(inflight, 1)

    inflight.wait(timeout=0.01)  # the client's KafkaTimeoutError is not the loop's business

    assert not inflight.has_answers


def test_short_waits_wait_their_whole_timeout() -> None:
    # A paced producer waits for less than a millisecond at 1,000 messages/s;
    # a wait that returned at once would spin the loop and starve the IO thread.
    inflight = InFlight(stall_after_s=60)
    batch(inflight, 1)
    waits, timeout = 100, 0.0008

    started = time.perf_counter()
    for _ in range(waits):
        inflight.wait(timeout)

    assert time.perf_counter() - started >= waits * timeout


def test_sends_unanswered_past_the_deadline_are_given_up_on_together(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=10, clock=clock)
    first = batch(inflight, 1)
    clock.now += 4
    batch(inflight, 2)
    clock.now += 5.9
    assert inflight.stalled() is None

    clock.now += STALL_CHECK_S + 0.2
    stall = inflight.stalled()

    assert stall is not None
    assert stall.seqs == [1, 2]
    assert stall.waited_s >= 10
    assert len(inflight) == 0
    # A late answer for a send given up on is not counted a second time.
    first.success((0, -1, None))
    assert list(inflight.take()) == []


def test_stalls_are_checked_at_most_every_tick(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=STALL_CHECK_S / 5, clock=clock)
    batch(inflight, 1)
    assert inflight.stalled() is None
    clock.now += STALL_CHECK_S / 2
    # Past the deadline, but the last check was less than a tick ago.
    assert inflight.stalled() is None
    clock.now += STALL_CHECK_S / 2
    assert inflight.stalled() is not None


def test_the_bound_is_in_bytes_within_limits_in_sends() -> None:
    assert limit_for(1024) == MAX_UNANSWERED_BYTES // 1024
    assert limit_for(100) == MAX_UNANSWERED  # small messages: capped in sends
    assert limit_for(1_000_000) == MIN_UNANSWERED  # huge ones: a few, within the client buffer
    assert limit_for(0) == MAX_UNANSWERED
