"""The broker's throttle time, as a metric and one log line a while.

A broker over its quota (Event Hubs beyond its throughput units) answers late
and says by how much in ``throttle_time_ms``. kafka-python pauses the
connection for that long and records it in its own metrics registry, out of
Prometheus' sight, and logs a warning per throttled answer: hundreds a minute
under sustained throttling. This module copies its figures into Prometheus and
says it in one ``broker.throttled`` line per interval; kafka-python's own
warnings are dropped by ``common/clients/_compat.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog
from prometheus_client import Gauge

from common import events

THROTTLE_MAX = Gauge(
    "kafka_client_throttle_time_max_seconds",
    "Longest the broker held back one of our requests (throttle_time_ms), "
    "in the Kafka client's window of about a minute.",
)
THROTTLE_AVG = Gauge(
    "kafka_client_throttle_time_avg_seconds",
    "Average throttle time per broker answer in the Kafka client's window.",
)

#: How often the client's figures are read: reading them walks its whole registry.
READ_EVERY_S = 5.0
#: At most one ``broker.throttled`` line this often while throttled.
LOG_EVERY_S = 30.0

ClientMetrics = Callable[[], Mapping[str, Mapping[str, float]]]


class ThrottleWatch:
    """Reads the client's throttle figures now and then; call ``check`` from the loop."""

    def __init__(
        self, metrics: ClientMetrics, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._metrics = metrics
        self._now = now
        self._read_at = now() + READ_EVERY_S
        self._logged_at = -LOG_EVERY_S
        self._log = structlog.get_logger()

    def check(self) -> None:
        now = self._now()
        if now < self._read_at:
            return
        self._read_at = now + READ_EVERY_S
        longest = average = 0.0
        for group, values in self._metrics().items():
            if "node-" in group:
                continue  # the per-broker figures are already in the totals
            longest = max(longest, values.get("throttle-time-max", 0.0) or 0.0)
            average = max(average, values.get("throttle-time-avg", 0.0) or 0.0)
        THROTTLE_MAX.set(longest / 1000)
        THROTTLE_AVG.set(average / 1000)
        if longest > 0 and now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            self._log.warning(
                events.BROKER_THROTTLED,
                throttle_max_ms=round(longest),
                throttle_avg_ms=round(average, 1),
                hint="the broker is over its quota (Event Hubs: throughput units)",
            )
