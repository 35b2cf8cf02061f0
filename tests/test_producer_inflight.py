"""The producer keeps count of every unanswered send: bounded, answered once, stalls noticed."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kafka.errors import KafkaTimeoutError

from producer.inflight import (
    MAX_UNANSWERED,
    MAX_UNANSWERED_BYTES,
    MIN_UNANSWERED,
    STALL_CHECK_S,
    InFlight,
    limit_for,
)
from tests.conftest import ManualClock


@dataclass(frozen=True)
class Written:
    """Stands in for kafka-python's RecordMetadata."""

    topic: str = "t"
    partition: int = 0
    offset: int = 0
    serialized_key_size: int = 3
    serialized_value_size: int = 100


def test_answers_are_handed_over_with_their_latency(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=60, clock=clock)
    inflight.sent(1)
    inflight.sent(2)
    clock.now += 0.25
    inflight.answer(2, Written(offset=7))
    inflight.answer(1, KafkaTimeoutError("expired"))

    taken = list(inflight.take())

    assert [(seq, latency) for seq, latency, _ in taken] == [(2, 0.25), (1, 0.25)]
    assert isinstance(taken[1][2], KafkaTimeoutError)
    assert len(inflight) == 0
    assert not inflight.has_answers


def test_the_bound_says_when_to_wait() -> None:
    inflight = InFlight(stall_after_s=60, limit=3)
    for seq in (1, 2):
        inflight.sent(seq)
    assert inflight.room == 1
    inflight.sent(3)
    assert inflight.room == 0
    inflight.answer(1, Written())
    list(inflight.take())
    assert inflight.room == 1


def test_a_send_the_client_refused_is_withdrawn_once() -> None:
    inflight = InFlight(stall_after_s=60)
    inflight.sent(1)

    assert inflight.withdraw(1)
    assert not inflight.withdraw(1)
    assert len(inflight) == 0


def test_wait_returns_once_half_of_the_bound_is_answered() -> None:
    inflight = InFlight(stall_after_s=60, limit=4)
    for seq in range(1, 5):
        inflight.sent(seq)
    answered = threading.Event()

    def io_thread() -> None:
        # As kafka-python's IO thread does: answers arrive while the loop waits.
        inflight.answer(1, Written())
        inflight.answer(2, Written())
        answered.set()

    waiter_done = threading.Event()

    def loop() -> None:
        inflight.wait(timeout=30)
        waiter_done.set()

    waiter = threading.Thread(target=loop)
    waiter.start()
    threading.Thread(target=io_thread).start()
    assert waiter_done.wait(10), "the loop was not woken by the answers"
    waiter.join()
    assert answered.is_set()
    assert [seq for seq, _, _ in inflight.take()] == [1, 2]


def test_wait_does_not_block_when_the_answers_are_already_there() -> None:
    inflight = InFlight(stall_after_s=60, limit=2)
    inflight.sent(1)
    inflight.sent(2)
    inflight.answer(1, Written())

    inflight.wait(timeout=30)  # would take 30 s if it missed the queued answer

    assert inflight.has_answers


def test_sends_unanswered_past_the_deadline_are_given_up_on_together(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=10, clock=clock)
    inflight.sent(1)
    clock.now += 4
    inflight.sent(2)
    clock.now += 5.9
    assert inflight.stalled() is None

    clock.now += STALL_CHECK_S + 0.2
    stall = inflight.stalled()

    assert stall is not None
    assert stall.seqs == [1, 2]
    assert stall.waited_s >= 10
    assert len(inflight) == 0
    # A late answer for a send given up on is not counted a second time.
    inflight.answer(1, Written())
    assert list(inflight.take()) == []


def test_stalls_are_checked_at_most_every_tick(clock: ManualClock) -> None:
    inflight = InFlight(stall_after_s=STALL_CHECK_S / 5, clock=clock)
    inflight.sent(1)
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
