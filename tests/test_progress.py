"""A commit never passes unfinished work: per partition, the offset that may be committed
is one past the last record done with every record before it done too, whatever order
the records are done in."""

from __future__ import annotations

import random

import pytest

from consumer.progress import PartitionProgress


def test_a_record_done_early_waits_for_the_ones_before_it() -> None:
    progress = PartitionProgress()
    for offset in (10, 11, 12, 13):
        progress.take(offset)

    assert progress.finish(12) is None
    assert progress.finish(11) is None
    assert len(progress) == 2
    assert progress.finish(10) == 13  # 10, 11 and 12 are done: 13 is next
    assert progress.finish(13) == 14
    assert len(progress) == 0


def test_gaps_in_offsets_are_passed_over() -> None:
    # Compaction and transaction markers leave offsets with no record.
    progress = PartitionProgress()
    for offset in (5, 8, 20):
        progress.take(offset)

    assert progress.finish(8) is None
    assert progress.finish(5) == 9
    assert progress.finish(20) == 21


@pytest.mark.parametrize("seed", range(20))
def test_in_any_order_the_committable_offset_never_passes_a_record_not_done(
    seed: int,
) -> None:
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(1_000), 60))
    progress = PartitionProgress()
    for offset in offsets:
        progress.take(offset)
    done: set[int] = set()
    committable = offsets[0]
    for offset in rng.sample(offsets, len(offsets)):
        moved = progress.finish(offset)
        done.add(offset)
        if moved is not None:
            assert moved > committable
            committable = moved
        # Everything below the committable offset is done; the record at it is not.
        assert all(o in done for o in offsets if o < committable)
        at = next((o for o in offsets if o >= committable), None)
        assert at is None or at not in done
    assert committable == offsets[-1] + 1
