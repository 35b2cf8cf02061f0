"""`docker compose up`: Kafka healthy, the topic made, both services healthy, messages flowing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.compose.project import Project, wait_until

pytestmark = pytest.mark.compose


def test_up_runs_kafka_the_topic_and_both_services(project: Callable[..., Project]) -> None:
    compose = project()
    compose.up()

    (kafka,) = compose.containers("kafka")
    assert compose.inspect(kafka)["State"]["Health"]["Status"] == "healthy"
    (topic_job,) = compose.containers("topic", all_states=True)
    assert compose.inspect(topic_job)["State"]["ExitCode"] == 0
    described = compose.kafka_tool("kafka-topics.sh", "--describe", "--topic", "testhub")
    assert described.count("Partition:") == 10

    (producer,) = compose.containers("producer")
    (consumer,) = compose.containers("consumer")
    for container in (producer, consumer):
        state = compose.inspect(container)
        assert state["State"]["Health"]["Status"] == "healthy"
        # The image's HEALTHCHECK, run as the image's user, not root.
        assert state["Config"]["User"] == "10001"
        assert compose.docker("exec", container, "id", "-u").strip() == "10001"

    def flowing() -> set[int]:
        sent = {line["seq"] for line in compose.events(producer, "message.sent")}
        received = {line["seq"] for line in compose.events(consumer, "message.received")}
        return sent & received if len(sent & received) >= 20 else set()

    both = wait_until(flowing, 60, "20 messages from the producer at the consumer")
    print(f"up: {len(both)} messages through, consumer owns {compose.owned(consumer, 'testhub')}")
    assert compose.owned(consumer, "testhub") == list(range(10))
