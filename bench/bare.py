"""Bare kafka-python loops: the client alone, with our client arguments and nothing else.

    python -m bench.bare produce --count N --warmup W --key-size K --value-size V
    python -m bench.bare consume --count N --warmup W

Settings come from the same environment the services read (``KAFKA_TOPIC``,
``KAFKA_GROUP_ID``...), and the client arguments from the same resolved plan,
so the only difference from our services is the service around the client.
Each run is a process of its own, like the services and the Java tools, and
prints one JSON line: the messages timed and the seconds they took, from the
end of the warm-up to the last one.
"""

from __future__ import annotations

import argparse
import json
import time

from kafka import KafkaConsumer, KafkaProducer

from common.config import ConsumerSettings, ProducerSettings, load, resolve


def produce(count: int, warmup: int, key_size: int, value_size: int) -> float:
    """Seconds to send and have acknowledged *count* messages after *warmup* others."""
    plan = resolve(load(ProducerSettings))
    producer = KafkaProducer(**plan.kafka)
    # Keys vary, as ours do (they hold a timestamp), so messages spread over the partitions.
    keys = [f"{i:0{key_size}d}"[-key_size:].encode() if key_size else None for i in range(1000)]
    value = b"v" * value_size
    topic = plan.topic
    for i in range(warmup):
        producer.send(topic, key=keys[i % 1000], value=value)
    producer.flush()
    started = time.perf_counter()
    for i in range(count):
        producer.send(topic, key=keys[i % 1000], value=value)
    producer.flush()
    took = time.perf_counter() - started
    producer.close()
    return took


def consume(count: int, warmup: int) -> tuple[int, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("loop", choices=("produce", "consume"))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--key-size", type=int, default=0)
    parser.add_argument("--value-size", type=int, default=100)
    args = parser.parse_args()
    if args.loop == "produce":
        timed = args.count, produce(args.count, args.warmup, args.key_size, args.value_size)
    else:
        timed = consume(args.count, args.warmup)
    print(json.dumps({"messages": timed[0], "seconds": timed[1]}))


if __name__ == "__main__":
    main()
