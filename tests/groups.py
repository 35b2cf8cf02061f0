"""What a consumer group has committed, read as any Kafka client reads it."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset of each partition of *topic*; 0 where it has none."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        found = {p: reader.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        reader.close()
    return {p: offset or 0 for p, offset in found.items()}
