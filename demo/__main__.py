"""``make demo``: the walkthrough's story without Docker, on a real Kafka broker.

A 10-partition topic, a producer and one consumer; a second consumer joins
and takes half the partitions; it stops and the first takes them all back.
Then a summary: messages produced and consumed, gaps, duplicates, and how
long each handover took. Ctrl+C stops everything cleanly.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import localkafka
from harness import ServiceGroup, ServiceProcess, service_env

TOPIC = "testhub"
PARTITIONS = 10
ALL = list(range(PARTITIONS))


class Demo:
    def __init__(self, bootstrap: str) -> None:
        self.names: dict[int, str] = {}
        self.pause = threading.Event()  # never set: waits below are a human's reading time
        self.group = ServiceGroup(
            service_env(
                bootstrap, KAFKA_TOPIC=TOPIC, KAFKA_GROUP_ID="testgroup", PRODUCER_RATE="20"
            ),
            echo=self.echo,
        )

    def say(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)

    def echo(self, service: ServiceProcess, line: dict[str, Any]) -> None:
        name = self.names.get(service.pid, service.module)
        event = line.get("event")
        if event in ("partitions.assigned", "partitions.revoked"):
            self.say(f"{name:<10}  {event:<20} Partition allocation - {line['assignment']}")
        elif event == "service.started":
            self.say(
                f"{name:<10}  started, metrics on http://127.0.0.1:{line['metrics_port']}/metrics"
            )

    def start(self, module: str, name: str) -> ServiceProcess:
        service = self.group.start(module)
        self.names[service.pid] = name
        return service

    def run(self) -> dict[str, Any]:
        producer = self.start("producer", "producer")
        first = self.start("consumer", "consumer-1")
        self.group.wait_until(lambda: first.owned(TOPIC) == ALL, 60, "consumer-1 owns all")
        self.say("consumer-1 owns all 10 partitions; producing 20 messages/s ...")
        self.pause.wait(5)

        self.say("starting consumer-2: the group splits the partitions")
        joined = time.monotonic()
        second = self.start("consumer", "consumer-2")
        self.group.wait_until(
            lambda: (
                sorted(first.owned(TOPIC) + second.owned(TOPIC)) == ALL
                and bool(second.owned(TOPIC))
                and bool(first.owned(TOPIC))
            ),
            60,
            "a split",
        )
        scale_out = time.monotonic() - joined
        self.say(
            f"split in {scale_out:.2f} s: consumer-1 {first.owned(TOPIC)}, "
            f"consumer-2 {second.owned(TOPIC)}"
        )
        self.pause.wait(10)

        self.say("stopping consumer-2 (SIGTERM): it commits and leaves the group")
        stopped = time.monotonic()
        second.stop()
        self.group.wait_until(lambda: first.owned(TOPIC) == ALL, 60, "consumer-1 owns all")
        scale_in = time.monotonic() - stopped
        self.say(f"consumer-1 owns all 10 again after {scale_in:.2f} s")
        self.pause.wait(5)

        self.say("stopping the producer, then consumer-1 once it has read everything")
        producer.stop()
        sent = set(producer.seqs("message.sent"))
        self.group.wait_until(
            lambda: (
                sent <= set(first.seqs("message.received")) | set(second.seqs("message.received"))
            ),
            30,
            "every message consumed",
        )
        first.stop()
        received = first.seqs("message.received") + second.seqs("message.received")
        return {
            "produced": len(sent),
            "consumed by consumer-1": len(first.seqs("message.received")),
            "consumed by consumer-2": len(second.seqs("message.received")),
            "gaps (produced, never consumed)": len(sent - set(received)),
            "duplicates (consumed twice)": len(received) - len(set(received)),
            "scale-out handover (s)": round(scale_out, 2),
            "scale-in handover (s)": round(scale_in, 2),
        }

    def stop_all(self) -> None:
        for service in reversed(self.group.started):
            if service.process.poll() is None:
                service.stop()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="demo-kafka-") as data_dir:
        print("starting a real Apache Kafka broker (localkafka) ...", flush=True)
        broker = localkafka.start(Path(data_dir), bind_to_parent=True)
        demo = Demo(broker.plaintext)
        try:
            localkafka.create_topic(broker, TOPIC, PARTITIONS)
            demo.say(f"topic {TOPIC} with {PARTITIONS} partitions on {broker.plaintext}")
            summary = demo.run()
        except KeyboardInterrupt:
            print("\ninterrupted: stopping everything", flush=True)
            return 130
        finally:
            demo.stop_all()
            localkafka.stop(Path(data_dir))
    print("\nsummary")
    for key, value in summary.items():
        print(f"  {key:<34} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
