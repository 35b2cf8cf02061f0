"""Case 3: end-to-end latency at a fixed rate, from the producer's timestamp to processing.

Our producer writes its send time into every message (``ts``); our consumer
logs a sample of what it processes, each line stamped when it was written.
Both run on this machine, so one clock serves both ends.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from bench.runs import PARTITIONS, fresh_topic, stamp
from bench.stats import percentile, summary
from harness import ServiceGroup, service_env

RATE = 1_000
#: One message in ten is logged: 100 samples a second, cheap at this rate.
LOG_EVERY = 10
WARMUP_S = 3.0
MEASURE_S = 20.0
_SENT_AT = re.compile(r'"ts":"([^"]+)"')


def _one_round(bootstrap: str, measure_s: float) -> dict[str, float]:
    with fresh_topic(bootstrap, "latency") as topic:
        group = ServiceGroup(service_env(bootstrap, KAFKA_TOPIC=topic))
        consumer = group.start(
            "consumer",
            KAFKA_GROUP_ID=f"latency-{uuid.uuid4().hex[:8]}",
            LOG_MESSAGE_EVERY=str(LOG_EVERY),
        )
        try:
            group.wait_until(lambda: len(consumer.owned(topic)) == PARTITIONS, 60, "all partitions")
            group.start("producer", PRODUCER_RATE=str(RATE), LOG_MESSAGE_EVERY="1000")
            wanted = int((WARMUP_S + measure_s) * RATE / LOG_EVERY)
            group.wait_until(
                lambda: len(consumer.events("message.received")) >= wanted,
                measure_s * 3 + 60,
                "the messages of one latency round",
            )
        finally:
            for service in reversed(group.started):
                service.stop()
    lines = consumer.events("message.received")[int(WARMUP_S * RATE / LOG_EVERY) : wanted]
    latencies = sorted(
        (stamp(line) - _epoch(_SENT_AT.search(line["content"]))) * 1000 for line in lines
    )
    return {
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1],
        "samples": len(latencies),
    }


def _epoch(found: re.Match[str] | None) -> float:
    if found is None:
        raise ValueError("a message.received line without the producer's timestamp")
    return stamp({"timestamp": found.group(1)})


def latency_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """p50, p99 and max of each round at RATE messages/s, summarised over the rounds."""
    runs = [_one_round(bootstrap, MEASURE_S * scale) for _ in range(rounds)]
    return {
        "rate_per_s": RATE,
        "log_every": LOG_EVERY,
        **{key: summary((r[key] for r in runs), 2) for key in ("p50_ms", "p99_ms", "max_ms")},
        "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs],
    }
