"""Case: the user's work at its own speed. A handler that waits 5 ms per record (a call to
another service), 10 partitions, 300 keys, one consumer process: ours one record at a
time (``partition``, the default), side by side in ``key`` and ``unordered`` order with
64 in flight, ``key`` with an ``async def`` handler, and Confluent's Parallel Consumer in
``KEY`` order with the same bound, on the same broker in the same run.
"""

from __future__ import annotations

import uuid
from typing import Any

from kafka import KafkaProducer

from bench import parallel
from bench.handlers import EVERY
from bench.runs import fresh_topic, rate_from_samples, rss_mib
from bench.stats import alternate, summary
from harness import ServiceGroup, service_env

KEYS = 300
WAIT_MS = 5
IN_FLIGHT = 64
#: Records per run: one at a time handles under 200 a second.
RECORDS = {"one_at_a_time": 2_000, "side_by_side": 60_000}
WARMUP_FRACTION = 0.1
#: Our contenders: their settings.
OURS: dict[str, dict[str, str]] = {
    "one_at_a_time": {"CONSUMER_ORDERING": "partition", "CONSUMER_HANDLER": "bench.handlers:waits"},
    "key": {"CONSUMER_ORDERING": "key", "CONSUMER_HANDLER": "bench.handlers:waits"},
    "key_async": {"CONSUMER_ORDERING": "key", "CONSUMER_HANDLER": "bench.handlers:waits_async"},
    "unordered": {"CONSUMER_ORDERING": "unordered", "CONSUMER_HANDLER": "bench.handlers:waits"},
}
CONTENDERS = (*OURS, "parallel_consumer")


def _fill(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        producer.send(topic, key=f"key-{n % KEYS}".encode(), value=f"{n:08d}".encode() * 4)
    producer.flush()
    producer.close()


def _ours(bootstrap: str, topic: str, contender: str, total: int) -> dict[str, float]:
    group = ServiceGroup(
        service_env(
            bootstrap,
            KAFKA_TOPIC=topic,
            KAFKA_GROUP_ID=f"{contender}-{uuid.uuid4().hex[:8]}",
            CONSUMER_MAX_IN_FLIGHT=str(IN_FLIGHT),
            BENCH_WAIT_MS=str(WAIT_MS),
            **OURS[contender],
        )
    )
    service = group.start("consumer")
    wanted = total // EVERY
    try:
        group.wait_until(lambda: len(service.events("bench.handled")) >= wanted, 900)
        memory = rss_mib(service.pid)
    finally:
        service.stop()
    done, seconds = rate_from_samples(
        service.events("bench.handled")[:wanted], EVERY, int(total * WARMUP_FRACTION) // EVERY
    )
    return {"records_per_s": done / seconds, "peak_rss_mib": memory["peak_rss_mib"]}


def _run(bootstrap: str, topic: str, contender: str, total: int) -> dict[str, float]:
    if contender in OURS:
        return _ours(bootstrap, topic, contender, total)
    answer = parallel.consume(
        bootstrap, topic, f"pc-{uuid.uuid4().hex[:8]}", total, in_flight=IN_FLIGHT, wait_ms=WAIT_MS
    )
    return {"records_per_s": answer["records"] / answer["seconds"]}


def processing_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Records/s per contender, alternated round by round, on one topic filled once."""
    totals = {
        c: int(RECORDS["one_at_a_time" if c == "one_at_a_time" else "side_by_side"] * scale)
        for c in CONTENDERS
    }
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS}
    with fresh_topic(bootstrap, "processing") as topic:
        _fill(bootstrap, topic, max(totals.values()))
        for _, contender in alternate(CONTENDERS, rounds):
            runs[contender].append(_run(bootstrap, topic, contender, totals[contender]))
    result: dict[str, Any] = {
        c: {name: summary(run[name] for run in runs[c]) for name in runs[c][0]} for c in CONTENDERS
    }
    one = result["one_at_a_time"]["records_per_s"]["median"]
    pc = result["parallel_consumer"]["records_per_s"]["median"]
    for contender in CONTENDERS:
        rate = result[contender]["records_per_s"]["median"]
        result[contender]["vs_one_at_a_time"] = round(rate / one, 2)
        result[contender]["vs_parallel_consumer"] = round(rate / pc, 2)
    return result | {
        "wait_ms": WAIT_MS,
        "keys": KEYS,
        "in_flight": IN_FLIGHT,
        "records": totals,
    }
