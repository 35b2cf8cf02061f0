"""Bare kafka-python: the client alone, with our client arguments and nothing else.

Settings come from the same environment the services read, and the client
arguments from the same resolved plan, so the only difference from our
services is the service around the client. Command line: ``bench.loops``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from kafka import KafkaConsumer, KafkaProducer

from bench import loops
from common.config import ConsumerSettings, ProducerSettings, load, resolve


def produce(count: int, warmup: int, key_size: int, value_size: int) -> loops.Timed:
    """Seconds to send and have acknowledged *count* messages after *warmup* others."""
    plan = resolve(load(ProducerSettings))
    producer = KafkaProducer(**plan.kafka)
    keys = loops.keys(key_size)
    value = b"v" * value_size
    topic = plan.topic
    for i in range(warmup):
        producer.send(topic, key=keys[i % 1000], value=value)
    producer.flush()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        producer.send(topic, key=keys[i % 1000], value=value)
    producer.flush()
    took = loops.Timed(time.perf_counter() - started, time.process_time() - cpu)
    producer.close()
    return took


def consume(count: int, warmup: int, _settings: Mapping[str, str]) -> tuple[int, float]:
    """Messages received after the first *warmup* (at least *count*), and the seconds taken."""
    plan = resolve(load(ConsumerSettings))
    consumer = KafkaConsumer(**plan.kafka)
    consumer.subscribe([plan.topic])
    received = 0
    started, at_start = 0.0, 0
    while received < warmup + count:
        for records in consumer.poll(timeout_ms=500).values():
            received += len(records)
        if not started and received >= warmup:
            started, at_start = time.perf_counter(), received
    took = time.perf_counter() - started
    consumer.close(autocommit=False)
    return received - at_start, took


if __name__ == "__main__":
    loops.main(__doc__.splitlines()[0], produce, consume)
