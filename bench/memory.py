"""Case 5: resident memory of each service, idle and under load.

Idle is the default rate of 10 messages/s after ten seconds; under load is
a producer sending flat out and the consumer reading behind it for twenty
seconds, measured as the peak (VmHWM) each process reached.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.runs import PARTITIONS, fresh_topic, rss_mib
from harness import ServiceGroup, service_env

SETTLE_S = 10.0
LOAD_S = 20.0


def memory_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """RSS in MiB: idle (now) and under load (peak); one round, memory is not noisy."""
    del rounds
    with fresh_topic(bootstrap, "memory") as topic:
        group = ServiceGroup(
            service_env(
                bootstrap, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"memory-{uuid.uuid4().hex[:8]}"
            )
        )
        try:
            consumer = group.start("consumer")
            group.wait_until(lambda: len(consumer.owned(topic)) == PARTITIONS, 60, "partitions")
            idle = group.start("producer")
            group.wait_until(lambda: idle.events("topic.ready"), 60, "the producer")
            # Memory settles over time, not on an event: this wait is the measurement.
            time.sleep(SETTLE_S * scale)
            result = {"producer_idle": rss_mib(idle.pid), "consumer_idle": rss_mib(consumer.pid)}
            loaded = group.start("producer", PRODUCER_RATE="0", LOG_MESSAGE_EVERY="1000")
            group.wait_until(lambda: loaded.events("topic.ready"), 60, "the loaded producer")
            time.sleep(LOAD_S * scale)
            result |= {
                "producer_load": rss_mib(loaded.pid),
                "consumer_load": rss_mib(consumer.pid),
            }
        finally:
            for service in reversed(group.started):
                service.stop()
    return {
        "producer_idle_mib": result["producer_idle"]["rss_mib"],
        "producer_load_peak_mib": result["producer_load"]["peak_rss_mib"],
        "consumer_idle_mib": result["consumer_idle"]["rss_mib"],
        "consumer_load_peak_mib": result["consumer_load"]["peak_rss_mib"],
    }
