"""Case: a transform, topic to topic. Records of about 100 B, 10 partitions, one consumer
process: the consumer with the default handler (reads, publishes nothing), a handler that
publishes each record to another topic at least once (outputs acknowledged before each
commit), and the same exactly once (outputs and offsets in one transaction per commit),
on the same broker in the same run.
"""

from __future__ import annotations

import uuid
from typing import Any

from kafka import KafkaProducer

from bench.handlers import EVERY
from bench.runs import fresh_topic, rate_from_samples
from bench.stats import alternate, summary
from harness import ServiceGroup, service_env

RECORDS = 100_000
WARMUP_FRACTION = 0.1
#: The contenders: their settings.
CONTENDERS: dict[str, dict[str, str]] = {
    "default_handler": {"LOG_MESSAGE_EVERY": str(EVERY)},
    "at_least_once": {"CONSUMER_HANDLER": "bench.handlers:copies", "LOG_MESSAGE_EVERY": "0"},
    "exactly_once": {
        "CONSUMER_HANDLER": "bench.handlers:copies",
        "CONSUMER_PROCESSING_GUARANTEE": "exactly_once",
        "LOG_MESSAGE_EVERY": "0",
    },
}
#: Each contender's log line of one record in EVERY.
SAMPLED = {"default_handler": "message.received"}


def _fill(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        producer.send(topic, key=f"key-{n % 300}".encode(), value=f"{n:08d}".encode() * 12)
    producer.flush()
    producer.close()


def _run(bootstrap: str, topic: str, out: str, contender: str, total: int) -> float:
    """Records a second, from the sampled lines after the warm-up."""
    name = f"{contender}-{uuid.uuid4().hex[:8]}"
    group = ServiceGroup(
        service_env(
            bootstrap,
            KAFKA_TOPIC=topic,
            KAFKA_GROUP_ID=name,
            KAFKA_CLIENT_ID=name,
            KAFKA_AUTO_OFFSET_RESET="earliest",
            CONSUMER_OUTPUT_TOPIC=out,
            **CONTENDERS[contender],
        )
    )
    service = group.start("consumer")
    event = SAMPLED.get(contender, "bench.handled")
    wanted = total // EVERY
    try:
        group.wait_until(lambda: len(service.events(event)) >= wanted, 900)
    finally:
        service.stop()
    done, seconds = rate_from_samples(
        service.events(event)[:wanted], EVERY, int(total * WARMUP_FRACTION) // EVERY
    )
    return done / seconds


def transform_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Records/s per contender, alternated round by round, on one topic filled once."""
    total = int(RECORDS * scale)
    runs: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    with fresh_topic(bootstrap, "transform") as topic, fresh_topic(bootstrap, "out") as out:
        _fill(bootstrap, topic, total)
        for _, contender in alternate(tuple(CONTENDERS), rounds):
            runs[contender].append(_run(bootstrap, topic, out, contender, total))
    result: dict[str, Any] = {c: {"records_per_s": summary(runs[c])} for c in CONTENDERS}
    default = result["default_handler"]["records_per_s"]["median"]
    at_least_once = result["at_least_once"]["records_per_s"]["median"]
    for contender in CONTENDERS:
        rate = result[contender]["records_per_s"]["median"]
        result[contender]["vs_default_handler"] = round(rate / default, 2)
        result[contender]["vs_at_least_once"] = round(rate / at_least_once, 2)
    return result | {"records": total}
