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
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

import localkafka

STRATEGIES = ("cooperative-sticky", "sticky", "range", "roundrobin")


class Proc:
    """A service process whose JSON log lines are collected as they come."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.lines: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(json.loads(line))
                self.changed.notify_all()

    def owned(self) -> list[int]:
        changes = [
            line["assignment"]
            for line in list(self.lines)
            if line["event"] in ("partitions.assigned", "partitions.revoked")
        ]
        return next(iter(changes[-1].values()), []) if changes else []

    def wait(self, check: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not check():
                if time.monotonic() > deadline:
                    raise TimeoutError(check)
                self.changed.wait(0.5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


def _stamp(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["timestamp"]).timestamp()


def one_round(bootstrap: str, strategy: str) -> dict[str, float]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 10, 1)])
    admin.close()
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"g-{topic}",
        "KAFKA_PARTITION_ASSIGNMENT_STRATEGY": strategy,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
    }
    producer = Proc("producer", {**env, "PRODUCER_RATE": "200"})
    first = Proc("consumer", env)
    second = None
    try:
        first.wait(lambda: len(first.owned()) == 10)
        first.wait(lambda: sum(x["event"] == "message.received" for x in first.lines) > 400)
        joined = time.time()
        second = Proc("consumer", env)
        second.wait(lambda: len(second.owned()) == 5 and len(first.owned()) == 5)
        split = time.time()
        # Let a second's worth of messages arrive after the split.
        first.wait(lambda: any(_stamp(x) > split + 1 for x in first.lines[-5:]))
        stamps = [
            _stamp(x)
            for x in list(first.lines)
            if x["event"] == "message.received" and joined - 1 <= _stamp(x) <= split + 1
        ]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        return {"handover_s": split - joined, "first_consumer_pause_s": max(gaps, default=0.0)}
    finally:
        for proc in (second, first, producer):
            if proc is not None:
                proc.stop()


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
