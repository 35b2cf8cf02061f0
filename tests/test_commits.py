"""Processed offsets reach the group within KAFKA_COMMIT_INTERVAL_MS; on a clean stop, at once."""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from tests.conftest import Cluster, EventHubsFront, Services, eventhubs_env, seqs

COMMITS = re.compile(r"^consumer_commits_total (\S+)$", re.MULTILINE)


def committed(kafka: Cluster, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    # A client of the group that only asks for its offsets; it never joins.
    client = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    try:
        return {p: client.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        client.close()


def end_offsets(kafka: Cluster, topic: str, partitions: int) -> dict[int, int]:
    client = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
    try:
        ends = client.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        client.close()
    return {tp.partition: offset for tp, offset in ends.items()}


def test_offsets_are_committed_within_the_interval_without_more_traffic(
    kafka: Cluster,
    services: Services,
    new_topic: Callable[..., str],
    prefill: Callable[..., list[int]],
) -> None:
    topic = new_topic(partitions=3)
    sent = prefill(topic, 300)
    group = f"g-{topic}"
    started = time.monotonic()
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=group,
        # Many small polls, few commits.
        KAFKA_MAX_POLL_RECORDS="10",
        KAFKA_COMMIT_INTERVAL_MS="1000",
    )
    services.wait_until(lambda: sorted(seqs(consumer, "message.received")) == sent, what="all 300")
    ends = end_offsets(kafka, topic, 3)
    # Nothing more arrives, and the last offsets are committed all the same.
    services.wait_until(
        lambda: committed(kafka, group, topic, 3) == ends, what="the end offsets committed"
    )
    elapsed = time.monotonic() - started
    commits = float(COMMITS.findall(consumer.get("/metrics")[1])[0])
    polls_with_messages = 300 // 10
    assert 1 <= commits <= elapsed / 1.0 + 1 < polls_with_messages
    assert consumer.stop() == 0


def test_a_clean_stop_commits_at_once(
    kafka: Cluster,
    services: Services,
    new_topic: Callable[..., str],
    prefill: Callable[..., list[int]],
) -> None:
    topic = new_topic(partitions=3)
    group = f"g-{topic}"
    # An interval far longer than the test: only the stop can commit the rest.
    settings = {"KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": group, "KAFKA_COMMIT_INTERVAL_MS": "600000"}
    first = services.start("consumer", **settings)
    services.wait_until(first.assignment, what="the first consumer's partitions")
    first_half = prefill(topic, 50)
    services.wait_until(lambda: sorted(seqs(first, "message.received")) == first_half, what="50")
    # The first poll's offsets were committed; the next commit is ten minutes away.
    prefill(topic, 50)
    services.wait_until(lambda: len(seqs(first, "message.received")) == 100, what="all 100")
    assert committed(kafka, group, topic, 3) != end_offsets(kafka, topic, 3)
    assert first.stop() == 0
    ends = end_offsets(kafka, topic, 3)
    assert committed(kafka, group, topic, 3) == ends

    # A successor in the group starts where the first one stopped: nothing twice.
    prefill(topic, 10)
    second = services.start("consumer", **settings)
    services.wait_until(lambda: len(second.events("message.received")) >= 10, what="10 new")
    assert second.stop() == 0
    received = [(e["partition"], e["offset"]) for e in second.events("message.received")]
    assert len(received) == 10
    assert all(offset >= ends[partition] for partition, offset in received)


def _most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def test_against_eventhubs_a_partition_is_committed_at_most_4_times_a_second(
    services: Services, new_topic: Callable[..., str], eventhubs_front: EventHubsFront
) -> None:
    topic = new_topic(partitions=4)
    # The Event Hubs path (its connection string), and steady traffic to commit.
    env = eventhubs_env(services.kafka, topic, f"g-{topic}")
    consumer = services.start("consumer", clean_env=True, **env)
    services.wait_until(lambda: len(consumer.owned(topic)) == 4, what="4 partitions")
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="200", **env)
    services.wait_until(lambda: len(seqs(consumer, "message.received")) >= 50, what="flowing")

    def commits() -> float:
        return float(COMMITS.findall(consumer.get("/metrics")[1])[0])

    first, started = commits(), time.monotonic()
    services.wait_until(
        lambda: len(seqs(consumer, "message.received")) >= 2000, timeout=60, what="2000"
    )
    made, elapsed = commits() - first, time.monotonic() - started
    assert producer.stop() == 0
    assert consumer.stop() == 0
    # Each commit carries every partition with new offsets, so commits/s is per
    # partition; at least 300 ms apart, n commits in t seconds are at most 4t + 1.
    print(f"eventhubs commits: {made:.0f} in {elapsed:.1f} s = {made / elapsed:.2f}/s")
    assert 4 <= made <= 4 * elapsed + 1
    # As the Event Hubs front saw them: per partition, never 5 within a second,
    # and never one it had to hold back.
    seen: dict[str, list[float]] = {}
    held = []
    for line in eventhubs_front.events("front.offsets_committed"):
        for partition in line["partitions"]:  # type: ignore[attr-defined]
            if partition.startswith(f"g-{topic}/"):
                seen.setdefault(partition, []).append(float(line["t"]))  # type: ignore[arg-type]
                held.append(line["held_ms"])
    busiest = max(_most_in_one_second(times) for times in seen.values())
    print(f"front: {sum(map(len, seen.values()))} partition commits, at most {busiest} in 1 s")
    assert len(seen) == 4
    assert busiest <= 4
    assert set(held) == {0}
