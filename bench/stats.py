"""Medians and spreads of repeated measurements, and the order contenders take turns in."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def alternate(contenders: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """(round, contender) as A B C A B C ...: a noisy minute hits every contender alike."""
    for round_ in range(rounds):
        for contender in contenders:
            yield round_, contender


def summary(values: Iterable[float], digits: int = 3) -> dict[str, float | int]:
    """Median, min, max and the spread (max - min) / median of *values*."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no measurements to summarise")
    median = statistics.median(ordered)
    spread = (ordered[-1] - ordered[0]) / median if median else 0.0
    return {
        "median": round(median, digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
        "spread": round(spread, 3),
        "n": len(ordered),
    }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        raise ValueError("no samples")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
