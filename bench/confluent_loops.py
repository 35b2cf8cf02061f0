"""confluent-kafka (librdkafka) with the services' settings: a contender in ``make bench``.

Command line: ``bench.loops``. The settings are translated from the same
resolved plan as ours; what the plan leaves out keeps librdkafka's default
(its batch.size is 1 MB, kafka-python's and Java's 16 KiB).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from bench import loops
from common.config import ConsumerSettings, ProducerSettings, load, resolve

#: kafka-python argument -> librdkafka property, for the settings both have.
_PROPERTIES = {
    "client_id": "client.id",
    "request_timeout_ms": "request.timeout.ms",
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "compression_type": "compression.type",
    "linger_ms": "linger.ms",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "group_id": "group.id",
    "enable_auto_commit": "enable.auto.commit",
    "auto_offset_reset": "auto.offset.reset",
    "session_timeout_ms": "session.timeout.ms",
    "heartbeat_interval_ms": "heartbeat.interval.ms",
    "max_poll_interval_ms": "max.poll.interval.ms",
}


def properties(kafka: Mapping[str, Any]) -> dict[str, Any]:
    """librdkafka's configuration for kafka-python arguments *kafka*."""
    config: dict[str, Any] = {"bootstrap.servers": ",".join(kafka["bootstrap_servers"])}
    for name, prop in _PROPERTIES.items():
        if name in kafka:
            value = kafka[name]
            config[prop] = "none" if value is None and name == "compression_type" else value
    return config


def produce(count: int, warmup: int, key_size: int, value_size: int) -> loops.Timed:
    """Seconds to send and have acknowledged *count* messages after *warmup* others."""
    plan = resolve(load(ProducerSettings))
    producer = Producer(properties(plan.kafka))
    keys = loops.keys(key_size)
    value = b"v" * value_size
    topic = plan.topic
    answers = {"delivered": 0, "failed": 0}

    def delivered(error: KafkaError | None, _message: Message) -> None:
        answers["failed" if error is not None else "delivered"] += 1

    def send(n: int) -> None:
        for i in range(n):
            while True:
                try:
                    producer.produce(topic, value, keys[i % 1000], on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.01)  # librdkafka's queue is full: serve answers, retry
            if i % 1000 == 0:
                producer.poll(0)
        producer.flush()

    send(warmup)
    started, cpu = time.perf_counter(), time.process_time()
    send(count)
    took = loops.Timed(time.perf_counter() - started, time.process_time() - cpu)
    if answers["failed"] or answers["delivered"] != warmup + count:
        raise loops.Incomplete(f"confluent-kafka: {answers} of {warmup + count} sends")
    return took


def consume(count: int, warmup: int, settings: Mapping[str, str]) -> tuple[int, float]:
    """Messages received after the first *warmup* (at least *count*), and the seconds taken."""
    plan = resolve(load(ConsumerSettings))
    consumer = Consumer(properties(plan.kafka) | dict(settings))
    consumer.subscribe([plan.topic])
    received = 0
    started, at_start = 0.0, 0
    try:
        while received < warmup + count:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error() is not None:
                    raise loops.Incomplete(f"confluent-kafka: {message.error()}")
                received += 1
            if not started and received >= warmup:
                started, at_start = time.perf_counter(), received
        return received - at_start, time.perf_counter() - started
    finally:
        consumer.close()


if __name__ == "__main__":
    loops.main(__doc__.splitlines()[0], produce, consume)
