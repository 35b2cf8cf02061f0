"""A Prometheus histogram that takes its observations a batch at a time.

prometheus_client's ``Histogram`` lets any thread observe one value at any
time, and pays for it on every observation: a lock for the sum, a linear
search of the buckets, a lock for the bucket: more than the consumer's
whole decoding of a message, so a consumer that timed each message twice
would spend most of its per-message work on its own metrics. So the hot
loops collect their values in a list and hand the list over once per
batch: one lock, and the buckets counted by a sort in C.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """A labelled histogram family; ``labels(...).observe_many(values)`` fills it."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError("buckets must be distinct and in increasing order")
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(float(b) for b in buckets)
        # The "le" labels as prometheus_client writes them (Go's float format).
        self._le = [floatToGoString(b) for b in (*self._bounds, float("inf"))]  # type: ignore[no-untyped-call]
        self._children: dict[tuple[str, ...], HistogramChild] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, *labelvalues: str) -> HistogramChild:
        if len(labelvalues) != len(self._labelnames):
            raise ValueError(f"{self._name} takes labels {self._labelnames}")
        with self._lock:
            child = self._children.get(labelvalues)
            if child is None:
                child = self._children[labelvalues] = HistogramChild(self._bounds)
            return child

    def describe(self) -> Iterable[HistogramMetricFamily]:
        # Lets the registry learn the name without collecting, as for its own metrics.
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        with self._lock:
            children = list(self._children.items())
        for labelvalues, child in children:
            counts, total = child.snapshot()
            cumulative, buckets = 0, []
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(list(labelvalues), buckets, total)
        yield family


class HistogramChild:
    """One label set's buckets: a count per bucket (the last is +Inf) and the sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Sequence[float]) -> None:
        """Add *values*; each lands in the first bucket whose bound is >= it."""
        if not values:
            return
        # Sorted once in C, each bound finds its place in it: a quarter of the
        # cost of placing every value among the bounds (``python -m bench
        # hotpath``). bisect_right: a value equal to a bound belongs to it, as
        # Prometheus' "le" says.
        ordered = sorted(values)
        at_or_below = [bisect.bisect_right(ordered, bound) for bound in self._bounds]
        at_or_below.append(len(ordered))
        with self._lock:
            below = 0
            for index, cumulative in enumerate(at_or_below):
                self._counts[index] += cumulative - below
                below = cumulative
            self._sum += sum(ordered)

    def snapshot(self) -> tuple[list[int], float]:
        """Counts per bucket and the sum, taken together."""
        with self._lock:
            return list(self._counts), self._sum
