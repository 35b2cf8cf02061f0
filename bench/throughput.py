"""Cases 1 and 2: producer and consumer throughput, ours against the clients users would pick.

The contenders: Kafka's Java client (its performance tools), bare
kafka-python, our services, aiokafka and confluent-kafka, all with the
settings of the same resolved plan. Each is a process of its own on the same
broker and topic layout, and each is timed from the end of a warm-up to its
last message: the Java tools by their own summary, the loops by their clock,
our services by the timestamps of their sampled ``message.sent`` and
``message.received`` lines. Every producer run is checked against the topic
(every message it counted is there) and its records per batch are read from
the broker's log.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import java
from bench.batches import records_per_batch
from bench.runs import fresh_topic, loop, rate_from_samples, rss_mib, written
from bench.stats import alternate, summary
from common import message
from common.config import ProducerSettings, load, resolve
from harness import ServiceGroup, service_env

PRODUCERS = ("java", "bare", "ours", "aiokafka", "confluent")
#: confluent-kafka's consumer twice: with librdkafka's defaults, which pause a
#: partition's fetching for fetch.queue.backoff.ms=1000 whenever its queue is
#: full (librdkafka#2879), and with 10 ms.
CONSUMERS = ("java", "bare", "ours", "aiokafka", "confluent", "confluent_10ms")
#: The loop program of each contender that is not a service or a Java tool.
LOOPS = {
    "bare": ("bare", ()),
    "aiokafka": ("aiokafka_loops", ()),
    "confluent": ("confluent_loops", ()),
    "confluent_10ms": ("confluent_loops", ("--set", "fetch.queue.backoff.ms=10")),
}
#: The producer's CPU seconds, all its threads, and its messages acknowledged.
CPU_AND_SENT = ("process_cpu_seconds_total", "messaging_client_sent_messages_total")
#: Our services log one message in this many, as in production at these rates.
LOG_EVERY = 1000
#: Messages per producer run by value size: long enough that start-up does not count.
MESSAGES = {
    "java": {100: 1_000_000, 1024: 400_000},
    "confluent": {100: 1_000_000, 1024: 400_000},
    "aiokafka": {100: 400_000, 1024: 200_000},
    "bare": {100: 200_000, 1024: 100_000},
    "ours": {100: 200_000, 1024: 100_000},
}
CONSUMER_MESSAGES = 1_000_000
#: The first messages of each Python run are a warm-up, left out of the timing.
WARMUP_FRACTION = 0.1


def envelope_size(message_size: int) -> tuple[int, int]:
    """Key and value bytes of our producer's message at PRODUCER_MESSAGE_SIZE."""
    key, value = message.encode(
        "vm-1234567-abcd", 1_000_000, message.stamp(datetime.now(UTC)), message_size
    )
    return len(key), len(value)


def _ours(
    bootstrap: str, topic: str, module: str, total: int, warmup: int, **settings: str
) -> dict[str, Any]:
    """Run our *module* until it has logged *total* messages; its rate after *warmup*."""
    event = "message.sent" if module == "producer" else "message.received"
    group = ServiceGroup(
        service_env(bootstrap, KAFKA_TOPIC=topic, LOG_MESSAGE_EVERY=str(LOG_EVERY), **settings)
    )
    service = group.start(module)
    lines_wanted = total // LOG_EVERY
    try:
        if module == "producer":
            warm = max(1, warmup // LOG_EVERY)
            group.wait_until(lambda: len(service.events(event)) >= warm, 600)
            at_warmup = service.metrics(*CPU_AND_SENT)
        group.wait_until(lambda: len(service.events(event)) >= lines_wanted, 600)
        if module == "producer":
            at_end = service.metrics(*CPU_AND_SENT)
        memory = rss_mib(service.pid)
    finally:
        service.stop()
    if failed := service.events("message.failed"):
        raise RuntimeError(f"our {module} failed {len(failed)} sends: {failed[0]}")
    lines = service.events(event)[:lines_wanted]
    done, seconds = rate_from_samples(lines, LOG_EVERY, warmup // LOG_EVERY)
    result = {"messages_per_s": done / seconds, **memory}
    if module == "producer":
        # Its sequence numbers count its sends: each up to the last line's is answered by now.
        result["messages"] = lines[-1]["seq"]
        cpu_s, sent = (at_end[name] - at_warmup[name] for name in CPU_AND_SENT)
        result["cpu_us_per_message"] = cpu_s / sent * 1e6
    return result


def _producer_run(bootstrap: str, contender: str, size: int, scale: float) -> dict[str, Any]:
    key_size, value_size = envelope_size(size)
    count = int(MESSAGES[contender][size] * scale)
    warmup = int(count * WARMUP_FRACTION)
    with fresh_topic(bootstrap, f"produce-{contender}") as topic:
        if contender == "java":
            plan = resolve(load(ProducerSettings, {"bootstrap_servers": bootstrap, "topic": topic}))
            result: dict[str, Any] = java.produce(plan.kafka, topic, count, record_size=value_size)
            expected = count
        elif contender == "ours":
            result = _ours(
                bootstrap,
                topic,
                "producer",
                count + warmup,
                warmup,
                PRODUCER_RATE="0",
                PRODUCER_MESSAGE_SIZE=str(size),
            )
            expected = result["messages"]
        else:
            module, settings = LOOPS[contender]
            answer = loop(
                module,
                "produce",
                service_env(bootstrap, KAFKA_TOPIC=topic),
                f"--count={count}",
                f"--warmup={warmup}",
                f"--key-size={key_size}",
                f"--value-size={value_size}",
                *settings,
            )
            result = {
                "messages_per_s": answer["messages"] / answer["seconds"],
                "cpu_us_per_message": answer["cpu_seconds"] / answer["messages"] * 1e6,
            }
            expected = count + warmup
        if (found := written(bootstrap, topic)) < expected:
            raise RuntimeError(f"{contender} counted {expected} messages, the topic has {found}")
        result["records_per_batch"] = records_per_batch(bootstrap, topic)
    result["mb_per_s"] = result["messages_per_s"] * value_size / 1e6
    return result


def producer_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Case 1: messages/s and MB/s sending with acks=all, per value size."""
    by_size: dict[str, Any] = {}
    for size in (100, 1024):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in PRODUCERS}
        for _, contender in alternate(PRODUCERS, rounds):
            runs[contender].append(_producer_run(bootstrap, contender, size, scale))
        key_size, value_size = envelope_size(size)
        by_size[f"{size}B"] = _compare(runs) | {"key_bytes": key_size, "value_bytes": value_size}
    return by_size


def _compare(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Summaries per contender and the ratios of the medians to bare's; the runs are kept too."""
    result: dict[str, Any] = {}
    for contender, measured in runs.items():
        result[contender] = {
            name: summary((r[name] for r in measured), 2 if name != "messages_per_s" else 0)
            for name in ("messages_per_s", "mb_per_s", "records_per_batch", "cpu_us_per_message")
            if name in measured[0]
        } | {"runs": [{k: round(v, 3) for k, v in r.items()} for r in measured]}
    median = {c: result[c]["messages_per_s"]["median"] for c in runs}
    for contender in runs:
        if contender != "bare":
            result[f"{contender}_vs_bare"] = round(median[contender] / median["bare"], 3)
    if "cpu_us_per_message" in result["ours"]:
        # CPU a message costs, all threads: what a noisy host's rates hide.
        cpu = {c: result[c]["cpu_us_per_message"]["median"] for c in ("ours", "bare")}
        result["ours_cpu_vs_bare"] = round(cpu["ours"] / cpu["bare"], 3)
    result["ours_vs_java"] = round(median["ours"] / median["java"], 3)
    result["bare_vs_java"] = round(median["bare"] / median["java"], 3)
    return result


def _consumer_run(bootstrap: str, topic: str, contender: str, total: int) -> dict[str, Any]:
    warmup = int(total * WARMUP_FRACTION)
    group_id = f"{contender}-{uuid.uuid4().hex[:8]}"
    if contender == "java":
        result: dict[str, Any] = {"messages_per_s": java.consume(bootstrap, topic, total, group_id)}
    elif contender == "ours":
        result = _ours(
            bootstrap,
            topic,
            "consumer",
            total,
            warmup,
            KAFKA_GROUP_ID=group_id,
            KAFKA_AUTO_OFFSET_RESET="earliest",
        )
    else:
        module, settings = LOOPS[contender]
        answer = loop(
            module,
            "consume",
            service_env(bootstrap, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group_id),
            f"--count={total - warmup}",
            f"--warmup={warmup}",
            *settings,
        )
        result = {"messages_per_s": answer["messages"] / answer["seconds"]}
    return result


def prefill(bootstrap: str, topic: str, count: int) -> None:
    """Fill *topic* with *count* envelopes of our producer, fast: Java sends them."""
    with tempfile.TemporaryDirectory() as tmp:
        payloads = Path(tmp) / "payloads.txt"
        payloads.write_text(
            "\n".join(
                message.encode(f"prefill-{i:04d}", i, message.stamp(datetime.now(UTC)), 100)[
                    1
                ].decode()
                for i in range(1000)
            )
        )
        plan = resolve(load(ProducerSettings, {"bootstrap_servers": bootstrap, "topic": topic}))
        java.produce(plan.kafka, topic, count, payload_file=payloads)


def consumer_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Case 2: messages/s reading a topic filled beforehand with our producer's messages."""
    total = int(CONSUMER_MESSAGES * scale)
    _, value_size = envelope_size(100)
    with fresh_topic(bootstrap, "consume") as topic:
        prefill(bootstrap, topic, total)
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONSUMERS}
        for _, contender in alternate(CONSUMERS, rounds):
            run = _consumer_run(bootstrap, topic, contender, total)
            run["mb_per_s"] = run["messages_per_s"] * value_size / 1e6
            runs[contender].append(run)
    return _compare(runs) | {"messages": total, "value_bytes": value_size}
