"""Records side by side against the real broker, directly and through the Event Hubs
front with the walkthrough's variables (docs/handlers.md, "Records side by side"): in
``key`` order the handling of one key's records never overlaps, also while partitions move
between two consumers, nothing is lost and a clean handover repeats nothing; a consumer
SIGKILLed with records in flight brings back only records at or past its committed
offsets, no more than the bound the docs state."""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumer.dispatch import AHEAD_PER_SLOT
from harness import ServiceProcess
from tests.clients import Feed
from tests.conftest import Cluster, Services, eventhubs_env
from tests.groups import committed

pytestmark = [pytest.mark.localkafka, pytest.mark.tools]

PARTITIONS = 6


def _handled(*consumers: ServiceProcess) -> list[dict[str, Any]]:
    return [line for c in consumers for line in c.events("test.handled")]


def _numbers(*consumers: ServiceProcess) -> Counter[int]:
    return Counter(int(line["value"]) for line in _handled(*consumers) if line["key"] != "stuck")


def _overlaps(*consumers: ServiceProcess) -> list[str]:
    """Two records of one key whose handling overlapped, in any of *consumers*."""
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in _handled(*consumers):
        by_key[line["key"]].append(line)
    found = []
    for key, lines in by_key.items():
        lines.sort(key=lambda line: line["began"])
        for before, after in itertools.pairwise(lines):
            if after["began"] < before["ended"]:
                found.append(f"{key}: {before['offset']} and {after['offset']}")
    return found


def _most_side_by_side(consumer: ServiceProcess) -> int:
    """The most records *consumer* had running at one moment."""
    moments = sorted(
        (t, step)
        for line in _handled(consumer)
        for t, step in ((line["began"], 1), (line["ended"], -1))
    )
    running = most = 0
    for _, step in moments:
        running += step
        most = max(most, running)
    return most


def _env(kafka: Cluster, topic: str, group: str, via: str, **settings: str) -> dict[str, str]:
    if via == "eventhubs":
        return {**eventhubs_env(kafka, topic, group), **settings}
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        **settings,
    }


@pytest.mark.parametrize(
    ("via", "handler"), [("kafka", "waits"), ("eventhubs", "waits"), ("kafka", "waits_async")]
)
def test_one_key_at_a_time_while_partitions_move_and_nothing_lost(
    services: Services, kafka: Cluster, new_topic: Callable[..., str], via: str, handler: str
) -> None:
    topic = new_topic(PARTITIONS)
    env = _env(
        kafka,
        topic,
        f"g-{topic}",
        via,
        CONSUMER_ORDERING="key",
        CONSUMER_MAX_IN_FLIGHT="16",
        CONSUMER_HANDLER=f"tests.handlers:{handler}",
        HANDLER_WAIT_MS="20",
    )
    feed = Feed(kafka.bootstrap_servers, topic)
    feed.more(400)
    a = services.start("consumer", clean_env=via == "eventhubs", **env)
    services.wait_until(lambda: len(_handled(a)) >= 200, timeout=60, what="A busy")

    b = services.start("consumer", clean_env=via == "eventhubs", **env)

    def b_busy() -> bool:
        feed.more(40)  # work keeps coming while the partitions move
        return len(_handled(b)) >= 100

    services.wait_until(b_busy, timeout=60, what="B busy")
    feed.more(200)
    assert b.stop(timeout=10) == 0  # SIGTERM, records in flight: within Docker's 10 s
    services.wait_until(lambda: len(a.owned(topic)) == PARTITIONS, timeout=60, what="A alone")
    feed.more(200)
    everything = set(range(feed.sent))
    services.wait_until(lambda: set(_numbers(a, b)) >= everything, timeout=60, what="all handled")
    assert a.stop() == 0

    counts = _numbers(a, b)
    assert set(counts) == everything
    assert [n for n, times in counts.items() if times > 1] == []  # handovers repeat nothing
    assert _overlaps(a, b) == []
    assert _most_side_by_side(a) > 1


@pytest.mark.parametrize("via", ["kafka", "eventhubs"])
def test_a_kill_with_records_in_flight_brings_back_only_what_was_past_the_commit(
    services: Services, kafka: Cluster, new_topic: Callable[..., str], via: str, tmp_path: Path
) -> None:
    topic, group = new_topic(PARTITIONS), "g-kill"
    unstuck = tmp_path / "unstuck"
    bound = 64
    env = _env(
        kafka,
        topic,
        group,
        via,
        CONSUMER_ORDERING="key",
        CONSUMER_MAX_IN_FLIGHT=str(bound),
        CONSUMER_HANDLER="tests.handlers:waits",
        STUCK_FLAG=str(unstuck),
    )
    feed = Feed(kafka.bootstrap_servers, topic)
    # One record that waits until the file exists: its partition's commit stays below it.
    feed.one("stuck", "-1")
    feed.more(3_000)
    a = services.start("consumer", clean_env=via == "eventhubs", **env)
    services.wait_until(lambda: len(_handled(a)) >= 1_500, timeout=60, what="A half way")
    # Killed once the group has some of it: what is committed must never come again.
    services.wait_until(
        lambda: sum(committed(kafka.bootstrap_servers, group, topic, PARTITIONS).values()) >= 1_000,
        timeout=60,
        what="1,000 committed",
    )
    killed_at = time.time()
    a.stop(signal.SIGKILL)
    at_kill = committed(kafka.bootstrap_servers, group, topic, PARTITIONS)

    unstuck.touch()
    b = services.start("consumer", clean_env=via == "eventhubs", **env)
    everything = set(range(feed.sent))
    services.wait_until(
        lambda: set(_numbers(a, b)) >= everything and _handled(b)[-1:] != [],
        timeout=60,
        what="all handled",
    )
    services.wait_until(
        lambda: any(line["key"] == "stuck" for line in _handled(b)), what="the stuck one"
    )
    assert b.stop() == 0

    by_a = {(line["partition"], line["offset"]) for line in _handled(a)}
    again = sorted(by_a & {(line["partition"], line["offset"]) for line in _handled(b)})
    assert set(_numbers(a, b)) == everything
    # Nothing committed came again: each record handled twice was at or past its
    # partition's committed offset.
    assert [(p, o) for p, o in again if o < at_kill[p]] == []
    # No more than the bound: records past the committable offsets, and those done in
    # the last commit interval (with a poll's time for slack).
    interval_s = 0.3 if via == "eventhubs" else 0.1
    recent = sum(1 for line in _handled(a) if line["ended"] >= killed_at - interval_s - 0.5)
    print(f"handled by A {len(by_a)}, again {len(again)}, recent {recent}")
    assert len(again) <= AHEAD_PER_SLOT["key"] * bound + recent
