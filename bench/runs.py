"""What every case needs to start and read one run: topics, environments, timestamps, memory."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

#: Partitions of every benchmark topic, as in the walkthrough.
PARTITIONS = 10


@contextmanager
def fresh_topic(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> Iterator[str]:
    """A new topic for one run, deleted afterwards so the broker's disk stays small."""
    name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
        yield name
    finally:
        try:
            admin.delete_topics([name])
        finally:
            admin.close()


def stamp(line: dict[str, Any]) -> float:
    """A log line's timestamp as seconds since the epoch."""
    return datetime.fromisoformat(line["timestamp"]).timestamp()


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


def loop(module: str, mode: str, env: dict[str, str], *arguments: str) -> dict[str, Any]:
    """Run ``python -m bench.<module> <mode>`` in a process of its own; its JSON answer."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", mode, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"bench.{module} {mode} exited {result.returncode}: {result.stderr[-2000:]}"
        )
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def written(bootstrap: str, topic: str) -> int:
    """Records in *topic*: the sum of its partitions' end offsets (it starts empty)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def rate_from_samples(lines: list[dict[str, Any]], every: int, skip: int) -> tuple[int, float]:
    """Messages and seconds between sampled log lines, after the first *skip* lines.

    With ``LOG_MESSAGE_EVERY=every`` a service logs the 1st, (every+1)th ...
    message, so consecutive lines are exactly *every* messages apart.
    """
    first, last = lines[skip], lines[-1]
    return (len(lines) - 1 - skip) * every, stamp(last) - stamp(first)
