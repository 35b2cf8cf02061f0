"""How long a scale-out stops the consumer already running, per assignment strategy.

    .venv/bin/python -m bench.scale_out_pause [--rounds 3]

For each strategy, on a fresh 10-partition topic with the producer at 200
messages/s: one consumer runs alone, a second joins, and we record how long
until the two own disjoint halves (handover) and the longest gap between two
messages processed by the first consumer in that window (its pause).
Strategies alternate round by round (A B C D A B C D ...), because this
machine is shared and noisy; the medians are printed as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

import localkafka
from localkafka.services import ServiceGroup

STRATEGIES = ("cooperative-sticky", "sticky", "range", "roundrobin")


def _stamp(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"]).timestamp()


def one_round(bootstrap: str, strategy: str) -> dict[str, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 10, 1)])
    admin.close()
    group = ServiceGroup(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"g-{topic}",
            "KAFKA_PARTITION_ASSIGNMENT_STRATEGY": strategy,
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": "0",
            "LOG_FORMAT": "json",
        }
    )
    try:
        group.start("producer", PRODUCER_RATE="200")
        first = group.start("consumer")
        group.wait_until(lambda: len(first.owned(topic)) == 10, 60)
        group.wait_until(lambda: len(first.seqs("message.received")) > 400, 60)
        joined = time.time()
        second = group.start("consumer")
        group.wait_until(lambda: len(second.owned(topic)) == len(first.owned(topic)) == 5, 60)
        split = time.time()
        # Let a second's worth of messages arrive after the split.
        group.wait_until(lambda: any(_stamp(x) > split + 1 for x in first.lines[-5:]), 60)
        stamps = [
            _stamp(x)
            for x in first.events("message.received")
            if joined - 1 <= _stamp(x) <= split + 1
        ]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        return {"handover_s": split - joined, "first_consumer_pause_s": max(gaps, default=0.0)}
    finally:
        for service in reversed(group.started):
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {s: [] for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as data_dir:
        broker = localkafka.start(Path(data_dir), bind_to_parent=True)
        try:
            for _ in range(args.rounds):
                for strategy in STRATEGIES:
                    results[strategy].append(one_round(broker.plaintext, strategy))
        finally:
            localkafka.stop(Path(data_dir))
    summary = {
        strategy: {
            key: {
                "median": round(statistics.median(r[key] for r in runs), 3),
                "min": round(min(r[key] for r in runs), 3),
                "max": round(max(r[key] for r in runs), 3),
            }
            for key in ("first_consumer_pause_s", "handover_s")
        }
        for strategy, runs in results.items()
    }
    print(json.dumps({"rounds": args.rounds, "strategies": summary}, indent=2))


if __name__ == "__main__":
    main()
