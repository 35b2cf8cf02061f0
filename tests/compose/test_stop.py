"""`docker compose stop` ends each service with exit 0 within the grace period."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.compose.project import Project, wait_until

pytestmark = pytest.mark.compose

GRACE_S = 10  # stop_grace_period in docker-compose.yml


def test_stop_is_clean_and_inside_the_grace_period(project: Callable[..., Project]) -> None:
    compose = project()
    compose.up()
    (producer,) = compose.containers("producer")
    (consumer,) = compose.containers("consumer")
    wait_until(lambda: compose.events(consumer, "message.received"), 60, "traffic")

    started = time.monotonic()
    compose.compose("stop", "producer", "consumer")
    took = time.monotonic() - started

    print(f"stop: {took:.1f} s for both")
    assert took < GRACE_S
    for container, last in ((producer, "producer.closed"), (consumer, "consumer.closed")):
        state = compose.inspect(container)["State"]
        assert state["ExitCode"] == 0
        assert not state["OOMKilled"]
        events = [line["event"] for line in compose.events(container)]
        assert last in events
        assert events[-1] == "service.stopped"
