"""aiokafka, the asyncio client, with the services' settings: a contender in ``make bench``.

Command line: ``bench.loops``. The settings are translated from the same
resolved plan as ours; what aiokafka has no name for keeps its default.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import loops
from common.config import ConsumerSettings, ProducerSettings, load, resolve

#: kafka-python argument names aiokafka shares, per side.
_PRODUCER_ARGS = (
    "bootstrap_servers",
    "client_id",
    "request_timeout_ms",
    "acks",
    "enable_idempotence",
    "compression_type",
    "linger_ms",
    "max_request_size",
)
_CONSUMER_ARGS = (
    "bootstrap_servers",
    "client_id",
    "request_timeout_ms",
    "group_id",
    "enable_auto_commit",
    "auto_offset_reset",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_records",
    "max_poll_interval_ms",
)


def _args(kafka: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: kafka[name] for name in names if name in kafka}


async def _produce(count: int, warmup: int, key_size: int, value_size: int) -> loops.Timed:
    plan = resolve(load(ProducerSettings))
    producer = AIOKafkaProducer(**_args(plan.kafka, _PRODUCER_ARGS))
    await producer.start()
    keys = loops.keys(key_size)
    value = b"v" * value_size
    topic = plan.topic
    try:

        async def send(n: int) -> list[asyncio.Future[Any]]:
            # send() waits only for room in the batch; the futures answer later.
            futures = [await producer.send(topic, value, key=keys[i % 1000]) for i in range(n)]
            await producer.flush()
            return futures

        await asyncio.gather(*await send(warmup))
        started, cpu = time.perf_counter(), time.process_time()
        futures = await send(count)
        took = loops.Timed(time.perf_counter() - started, time.process_time() - cpu)
        failed = sum(1 for future in futures if not future.done() or future.exception())
        if failed:
            raise loops.Incomplete(f"aiokafka: {failed} of {count} sends not acknowledged")
        return took
    finally:
        await producer.stop()


async def _consume(count: int, warmup: int, settings: Mapping[str, str]) -> tuple[int, float]:
    plan = resolve(load(ConsumerSettings))
    consumer = AIOKafkaConsumer(plan.topic, **_args(plan.kafka, _CONSUMER_ARGS), **settings)
    await consumer.start()
    received = 0
    started, at_start = 0.0, 0
    try:
        while received < warmup + count:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received += len(records)
            if not started and received >= warmup:
                started, at_start = time.perf_counter(), received
        return received - at_start, time.perf_counter() - started
    finally:
        await consumer.stop()


def produce(count: int, warmup: int, key_size: int, value_size: int) -> loops.Timed:
    return asyncio.run(_produce(count, warmup, key_size, value_size))


def consume(count: int, warmup: int, settings: Mapping[str, str]) -> tuple[int, float]:
    return asyncio.run(_consume(count, warmup, settings))


if __name__ == "__main__":
    loops.main(__doc__.splitlines()[0], produce, consume)
