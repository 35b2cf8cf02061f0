"""A fault repeated at the rate of messages is one line per interval per key, and the
lines together count every occurrence: the first said at once, none lost from the count."""

from __future__ import annotations

from common.repeats import Repeats
from common.testing import ManualClock


def test_the_first_is_said_then_one_line_per_interval_counting_everything_since() -> None:
    clock = ManualClock()
    repeats = Repeats(interval_s=10.0, clock=clock)
    said = [repeats.add("queue_full", 5)]
    for _ in range(9):
        clock.advance(1.0)
        said.append(repeats.add("queue_full", 5))
    clock.advance(1.0)  # 10 s after the first line
    said.append(repeats.add("queue_full", 5))

    assert said == [5, *[None] * 9, 50]
    assert sum(n for n in said if n) == 11 * 5


def test_each_key_has_its_own_interval() -> None:
    clock = ManualClock()
    repeats = Repeats(interval_s=10.0, clock=clock)
    assert repeats.add("export_failed", 512) == 512
    assert repeats.add("queue_full") == 1
    assert repeats.add("export_failed", 512) is None
