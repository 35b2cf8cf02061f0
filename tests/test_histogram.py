"""The consumer's batch-fed histograms expose exactly what prometheus_client's own would."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from common.histogram import BatchHistogram

BUCKETS = (1e-5, 2.5e-5, 0.001, 0.5, 1, 30)
#: Bounds themselves are drawn often: a value equal to a bound belongs to that bucket.
VALUES = st.sampled_from(BUCKETS) | st.floats(min_value=0, max_value=100, allow_nan=False)


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def sum_of(lines: list[str]) -> float:
    return float(next(line for line in lines if "_sum" in line).rsplit(" ", 1)[1])


@given(st.lists(st.lists(VALUES, max_size=20), max_size=5))
def test_batches_expose_what_one_by_one_observations_would(batches: list[list[float]]) -> None:
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = BatchHistogram("latency_seconds", "Help.", ["topic"], BUCKETS, ours_registry)
    theirs = Histogram(
        "latency_seconds", "Help.", ["topic"], buckets=BUCKETS, registry=theirs_registry
    )
    for batch in batches:
        ours.labels("t").observe_many(batch)
        child = theirs.labels("t")
        for value in batch:
            child.observe(value)
    ours_lines, theirs_lines = exposition(ours_registry), exposition(theirs_registry)
    # Sums may differ in the last digits: the order of float additions differs.
    assert [line for line in ours_lines if "_sum" not in line] == [
        line for line in theirs_lines if "_sum" not in line
    ]
    if any(batches):
        assert math.isclose(sum_of(ours_lines), sum_of(theirs_lines), rel_tol=1e-9)


def test_observations_from_many_threads_are_all_counted() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("work_seconds", "Help.", [], BUCKETS, registry)
    child = histogram.labels()

    def observe() -> None:
        for _ in range(500):
            child.observe_many([0.001, 2.0])

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.get_sample_value("work_seconds_count") == 4_000
    assert registry.get_sample_value("work_seconds_bucket", {"le": "0.001"}) == 2_000
    assert registry.get_sample_value("work_seconds_sum") == pytest.approx(2_000 * 2.001)


def test_buckets_out_of_order_and_wrong_label_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram("x_seconds", "Help.", [], (1, 0.5), registry=None)
    histogram = BatchHistogram("y_seconds", "Help.", ["topic"], BUCKETS, registry=None)
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels("a", "b")
