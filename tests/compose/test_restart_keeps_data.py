"""`docker compose down` then `up` keeps the topic, its messages and the committed offsets,
and leaves no anonymous volume behind."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.compose.project import Project, wait_until

pytestmark = pytest.mark.compose


def _stored(compose: Project, count: int) -> set[tuple[str, int]]:
    """(producer, seq) of the first *count* messages in the topic, read by Kafka's own consumer."""
    values = compose.kafka_tool(
        "kafka-console-consumer.sh",
        "--topic", "testhub", "--from-beginning",
        "--max-messages", str(count), "--timeout-ms", "30000",
    )  # fmt: skip
    envelopes = [json.loads(line) for line in values.splitlines() if line.startswith("{")]
    return {(e["producer"], e["seq"]) for e in envelopes}


def _last_offsets(compose: Project, consumer: str) -> dict[int, int]:
    last: dict[int, int] = {}
    for line in compose.events(consumer, "message.received"):
        last[line["partition"]] = max(last.get(line["partition"], -1), line["offset"])
    return last


def test_down_and_up_lose_nothing_and_process_nothing_twice(
    project: Callable[..., Project],
) -> None:
    compose = project()
    volumes_before = set(compose.docker("volume", "ls", "--quiet").split())
    compose.up()
    (producer,) = compose.containers("producer")
    (consumer,) = compose.containers("consumer")
    wait_until(lambda: len(compose.events(producer, "message.sent")) >= 50, 60, "50 sent")
    compose.compose("stop", "producer")
    sent = {(line["producer"], line["seq"]) for line in compose.events(producer, "message.sent")}

    def caught_up() -> bool:
        received = compose.events(consumer, "message.received")
        return {(line["producer"], line["seq"]) for line in received} >= sent

    wait_until(caught_up, 60, "the consumer to process all that was sent")
    processed = _last_offsets(compose, consumer)
    compose.compose("down")

    left = set(compose.docker("volume", "ls", "--quiet").split()) - volumes_before
    assert left == {f"{compose.name}_kafka-data", f"{compose.name}_prometheus-data"}, (
        "down left volumes other than the named ones"
    )

    compose.up()
    (producer,) = compose.containers("producer")
    (consumer,) = compose.containers("consumer")
    wait_until(lambda: compose.events(producer, "message.sent"), 60, "the new producer sending")
    compose.compose("stop", "producer")
    new = {(line["producer"], line["seq"]) for line in compose.events(producer, "message.sent")}
    # Nothing lost: what was sent before down is still in the topic.
    assert _stored(compose, len(sent) + len(new)) == sent | new, (
        "messages from before down are gone"
    )
    # Nothing twice: the group resumes after what it had processed.
    wait_until(
        lambda: (
            {(x["producer"], x["seq"]) for x in compose.events(consumer, "message.received")} >= new
        ),
        60,
        "the consumer to process the new messages",
    )
    resumed: dict[int, int] = {}
    for line in compose.events(consumer, "message.received"):
        partition = line["partition"]
        resumed[partition] = min(resumed.get(partition, line["offset"]), line["offset"])
    again = [p for p, first in resumed.items() if first <= processed.get(p, -1)]
    print(f"down/up: {len(sent)} sent and processed before, resumed at {resumed}")
    assert not again, f"partitions {again} were processed again from before down"
