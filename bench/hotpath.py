"""Case 6: what our code adds per message, timed in this process, and what a commit costs.

Throughput runs say how far the services are from bare kafka-python; these
figures say where the difference is: building a message, decoding one, the
consumer's whole per-message work (decode, time, sample, count) on batches
of real records fetched from the broker, and the CPU kafka-python spends on
one offset commit, which KAFKA_COMMIT_INTERVAL_MS spreads. Logging is off here
(``LOG_MESSAGE_EVERY=0``), so the tables stay readable; in the services one
line per 1,000 messages adds about 0.03 µs a message.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import OffsetAndMetadata

from bench.runs import fresh_topic
from bench.stats import summary
from bench.throughput import prefill
from common import message
from common.clients import Consumer
from common.config import ConsumerPlan, ConsumerSettings, load, resolve
from common.health import Health
from common.shutdown import Shutdown
from consumer import metrics
from consumer.handler import log_records
from consumer.in_order import InOrder, records_of
from consumer.membership import Membership
from consumer.offsets import OffsetTracker

#: Records fetched once and processed again each round.
RECORDS = 200_000
#: Messages built or decoded per round.
CALLS = 200_000
#: Seconds of polling with a commit before each poll, and as long without.
COMMIT_S = 3.0


def _us_per_call(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


def _build(clock: message.Clock, size: int) -> tuple[bytes, bytes]:
    return message.encode("bench", 1, clock.stamp(), size)


def _fetch(plan: ConsumerPlan, count: int) -> tuple[Consumer, list[Any]]:
    client = Consumer(**plan.kafka)
    client.subscribe([plan.topic])
    batches, fetched = [], 0
    while fetched < count:
        batch = client.poll(timeout_ms=500)
        if batch:
            batches.append(batch)
            fetched += sum(len(records) for records in batch.values())
    return client, batches


def _consumer_steps(records: list[Any]) -> dict[str, float]:
    """Microseconds per message of each step of the consumer's loop, alone, on *values*.

    The steps of ``InOrder.handle`` as it does them, so the
    docs/performance.md can say where a consumed message's time goes.
    """
    values = [r.value for r in records]
    count = len(values)
    envelopes = [message.envelope_of(v) for v in values]
    default = log_records(0, "bench")
    clock = time.perf_counter

    def timed(step: Callable[[], object]) -> float:
        started = clock()
        step()
        return (clock() - started) / count * 1e6

    def decode() -> None:
        for value in values:
            message.envelope_of(value)

    def latency() -> None:
        # The clock read is the processing time's: the wall clock is derived from it.
        latencies = []
        now = clock()
        wall_offset = time.time() - now
        for envelope in envelopes:
            if envelope is not None:
                latency = now + wall_offset - envelope.sent_at.timestamp()
                latencies.append(latency if latency > 0 else 0.0)

    def duration() -> None:
        durations = []
        now = clock()
        for _ in values:
            end = clock()
            durations.append(end - now)
            now = end

    def handler() -> None:
        # Our Records, built as the loop builds them, and the default handler's call.
        for ours in records_of(records):
            default(ours)

    figures = [0.004] * count
    histograms = metrics.PROCESS_DURATION.labels("bench-hotpath")

    def observe() -> None:
        for start in range(0, count, 500):  # once per poll of 500, twice: as the service
            histograms.observe_many(figures[start : start + 500])
            histograms.observe_many(figures[start : start + 500])

    return {
        "decode_us": timed(decode),
        "latency_us": timed(latency),
        "duration_us": timed(duration),
        "histograms_us": timed(observe),
        "handler_us": timed(handler),
    }


def _commit_cpu_ms(client: Any, seconds: float) -> float:
    """CPU of one commit_async: polls with a commit each, less as long a time of polls alone."""
    partitions = sorted(client.assignment())
    offsets = {tp: OffsetAndMetadata(0, "", -1) for tp in partitions}

    def poll_for(commit: bool) -> tuple[float, int]:
        cpu, deadline, commits = time.process_time(), time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            if commit:
                client.commit_async(offsets)
                commits += 1
            client.poll(timeout_ms=10)
        return time.process_time() - cpu, commits

    with_commits, commits = poll_for(True)
    without, _ = poll_for(False)
    return (with_commits - without) / commits * 1e3


def hotpath_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Microseconds per message: encode (100 B, 1 KiB), decode, and the consumer's batch loop."""
    calls = max(1_000, int(CALLS * scale))
    sent_at = datetime.now(UTC)
    clock = message.Clock()
    value = message.encode("bench-producer", 1, message.stamp(sent_at), 100)[1]
    runs: dict[str, list[float]] = {
        "encode_100B_us": [],
        "encode_1024B_us": [],
        "decode_us": [],
        "consumer_batch_us": [],
        "commit_cpu_ms": [],
        "step_decode_us": [],
        "step_latency_us": [],
        "step_duration_us": [],
        "step_histograms_us": [],
        "step_handler_us": [],
    }
    with fresh_topic(bootstrap, "hotpath") as topic:
        prefill(bootstrap, topic, max(1_000, int(RECORDS * scale)))
        overrides = {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "group_id": f"hotpath-{uuid.uuid4().hex[:8]}",
            "log_message_every": 0,
        }
        plan = resolve(load(ConsumerSettings, overrides))
        client, batches = _fetch(plan, max(1_000, int(RECORDS * scale)))
        try:
            # The default way records are handled: one at a time per partition.
            in_order = InOrder(
                client,
                log_records(plan.settings.log_message_every, plan.group_id),
                plan.settings,
                OffsetTracker(),
                Membership(client, plan.settings.session_timeout_ms, plan.group_id),
                topic=plan.topic,
                group_id=plan.group_id,
                health=Health(),
                shutdown=Shutdown(),
                clock=time.perf_counter,
            )
            records = sum(len(r) for batch in batches for r in batch.values())
            for _ in range(rounds):
                for size in (100, 1024):
                    # As the producer does per message: stamp it, then build it.
                    build = functools.partial(_build, clock, size)
                    runs[f"encode_{size}B_us"].append(_us_per_call(build, calls))
                runs["decode_us"].append(_us_per_call(lambda: message.decode(value), calls))
                started = time.perf_counter()
                for batch in batches:
                    # The loop itself, as the service runs it between two polls.
                    in_order.handle(batch)
                runs["consumer_batch_us"].append((time.perf_counter() - started) / records * 1e6)
                fetched = [r for batch in batches for rs in batch.values() for r in rs]
                for step, figure in _consumer_steps(fetched).items():
                    runs[f"step_{step}"].append(figure)
            # Nothing more to fetch: the polls below only carry the commits.
            client.pause(*client.assignment())
            for _ in range(rounds):
                runs["commit_cpu_ms"].append(_commit_cpu_ms(client, max(0.5, COMMIT_S * scale)))
        finally:
            client.close(autocommit=False)
    return {name: summary(values) for name, values in runs.items()} | {
        "records": records,
        "batches": len(batches),
    }
