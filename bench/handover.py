"""Case 4: how fast partitions move between consumers, with the producer at a steady rate.

On a 10-partition topic one consumer runs alone; then (a) a second joins,
(b) the second stops with SIGTERM, (c) a new second joins and is killed with
SIGKILL. Times run from the moment we start or signal a process to the
timestamp of the assignment line that completes the move; a pause is the
longest gap between two messages the first consumer processed around it.
"""

from __future__ import annotations

import collections
import itertools
import signal
import time
import uuid
from typing import Any

from bench.runs import PARTITIONS, fresh_topic, stamp
from bench.stats import alternate, summary
from harness import ServiceGroup, ServiceProcess, service_env

RATE = 200
HALF = PARTITIONS // 2


def _assigned_at(consumer: ServiceProcess) -> float:
    """When the consumer logged its latest assignment change."""
    changes = consumer.events("partitions.assigned") + consumer.events("partitions.revoked")
    return max(stamp(x) for x in changes)


def _pause(consumer: ServiceProcess, start: float, end: float) -> float:
    """The longest gap between two messages *consumer* processed from *start* to *end*."""
    stamps = [
        stamp(x) for x in consumer.events("message.received") if start - 1 <= stamp(x) <= end + 1
    ]
    return max((b - a for a, b in itertools.pairwise(stamps)), default=end - start)


def _after(group: ServiceGroup, consumer: ServiceProcess, moment: float) -> None:
    """Wait until *consumer* has processed messages for a second after *moment*."""
    group.wait_until(
        lambda: any(stamp(x) > moment + 1 for x in consumer.lines[-5:]), 60, "a second of traffic"
    )


STRATEGIES = ("sticky", "cooperative-sticky", "range", "roundrobin")


def one_round(bootstrap: str, parts: str = "abc", **settings: str) -> dict[str, float]:
    """The scenario's *parts* on a fresh topic; *settings* are extra consumer variables."""
    with fresh_topic(bootstrap, "handover") as topic:
        group = ServiceGroup(
            service_env(
                bootstrap,
                KAFKA_TOPIC=topic,
                KAFKA_GROUP_ID=f"handover-{uuid.uuid4().hex[:8]}",
                **settings,
            )
        )
        try:
            first = group.start("consumer")
            group.wait_until(lambda: len(first.owned(topic)) == PARTITIONS, 60, "partitions")
            group.start("producer", PRODUCER_RATE=str(RATE), LOG_MESSAGE_EVERY="100")
            group.wait_until(lambda: len(first.events("message.received")) > RATE, 60, "traffic")
            result: dict[str, float] = {}
            for part in parts:
                result |= _PARTS[part](group, topic, first)
            return result
        finally:
            for service in reversed(group.started):
                if service.process.poll() is None:
                    service.stop()
                else:
                    group.kill_all([service])


def _join(group: ServiceGroup, topic: str, first: ServiceProcess) -> dict[str, float]:
    """(a) A second consumer joins: until both own half, and the first's pause."""
    joined = time.time()
    second = group.start("consumer")
    group.wait_until(
        lambda: len(first.owned(topic)) == len(second.owned(topic)) == HALF, 60, "a split"
    )
    split = max(_assigned_at(first), _assigned_at(second))
    _after(group, first, split)
    return {"join_s": split - joined, "join_first_paused_s": _pause(first, joined, split)}


def _leave(group: ServiceGroup, topic: str, first: ServiceProcess) -> dict[str, float]:
    """(b) The second stops with SIGTERM: until the first owns all."""
    second = group.started[-1]
    signalled = time.time()
    second.stop(signal.SIGTERM)
    group.wait_until(lambda: len(first.owned(topic)) == PARTITIONS, 60, "the first owns all")
    owned = _assigned_at(first)
    _after(group, first, owned)
    return {
        "sigterm_s": owned - signalled,
        "sigterm_first_paused_s": _pause(first, signalled, owned),
    }


def _kill(group: ServiceGroup, topic: str, first: ServiceProcess) -> dict[str, float]:
    """(c) A new second joins and is killed: until the first owns all, and duplicates."""
    third = group.start("consumer")
    group.wait_until(
        lambda: len(first.owned(topic)) == len(third.owned(topic)) == HALF, 60, "a split"
    )
    _after(group, third, _assigned_at(third))
    killed = time.time()
    third.stop(signal.SIGKILL)
    # Nobody tells the group: it waits out KAFKA_SESSION_TIMEOUT_MS.
    group.wait_until(
        lambda: len(first.owned(topic)) == PARTITIONS, 120, "the first owns all after a kill"
    )
    owned = _assigned_at(first)
    _after(group, first, owned)
    consumers = [s for s in group.started if s.module == "consumer"]
    seen = collections.Counter(x["seq"] for c in consumers for x in c.events("message.received"))
    return {
        "sigkill_s": owned - killed,
        "sigkill_duplicates": sum(n - 1 for n in seen.values() if n > 1),
    }


_PARTS = {"a": _join, "b": _leave, "c": _kill}


def _summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        **{key: summary((r[key] for r in runs), 3) for key in runs[0]},
        "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
    }


def handover_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Parts (a), (b) and (c) with the default settings, summarised over the rounds."""
    del scale  # the scenario has no length to scale
    runs = [one_round(bootstrap) for _ in range(rounds)]
    return {"rate_per_s": RATE, "partitions": PARTITIONS, **_summarise(runs)}


def strategies_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Parts (a) and (b) for each assignment strategy, alternated round by round:
    what a scale-up and a scale-down (an autoscaler's SIGTERM) cost the consumer
    that stays."""
    del scale
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in STRATEGIES}
    for _, strategy in alternate(STRATEGIES, rounds):
        runs[strategy].append(
            one_round(bootstrap, "ab", KAFKA_PARTITION_ASSIGNMENT_STRATEGY=strategy)
        )
    return {"rate_per_s": RATE, **{s: _summarise(r) for s, r in runs.items()}}


#: Our default heartbeat, and the one Microsoft asks for on Event Hubs.
HEARTBEATS = ("500", "3000")


def heartbeat_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Parts (a) and (b) with each heartbeat interval, alternated round by round.

    What Event Hubs' 3000 ms costs a handover: a member hears of a rebalance
    on its next heartbeat.
    """
    del scale
    runs: dict[str, list[dict[str, float]]] = {h: [] for h in HEARTBEATS}
    for _, heartbeat in alternate(HEARTBEATS, rounds):
        runs[heartbeat].append(one_round(bootstrap, "ab", KAFKA_HEARTBEAT_INTERVAL_MS=heartbeat))
    return {"rate_per_s": RATE, **{f"heartbeat_{h}_ms": _summarise(r) for h, r in runs.items()}}
