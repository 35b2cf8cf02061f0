"""The producer sends at PRODUCER_RATE, in bursts, and catches up at most a second after a stall."""

from __future__ import annotations

import pytest

from producer.pace import BURST, CATCH_UP_S, Pace
from tests.conftest import ManualClock


def test_at_rate_zero_a_whole_burst_is_always_due() -> None:
    pace = Pace(0)
    assert pace.due() == BURST
    pace.took(BURST)
    assert pace.due() == BURST
    assert pace.wait_s() == 0


def test_at_a_rate_what_fell_due_is_sent_and_the_next_waits(clock: ManualClock) -> None:
    pace = Pace(10, clock=clock)
    assert pace.due() == 1
    pace.took(1)
    assert pace.due() == 0
    assert pace.wait_s() == pytest.approx(0.1)
    clock.now += 0.35
    # Due at +0.1, +0.2 and +0.3: three, sent in one go.
    assert pace.due() == 3
    pace.took(3)
    assert pace.due() == 0


def test_after_a_stall_at_most_a_second_is_caught_up(clock: ManualClock) -> None:
    pace = Pace(50, burst=1000, clock=clock)
    pace.took(pace.due())
    clock.now += 60  # a paused VM
    assert pace.due() == int(50 * CATCH_UP_S) + 1


def test_a_burst_is_bounded(clock: ManualClock) -> None:
    pace = Pace(10_000, burst=100, clock=clock)
    clock.now += 0.5
    assert pace.due() == 100
