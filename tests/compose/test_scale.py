"""`--scale consumer=2` splits the partitions 5/5 and `--scale consumer=1` gives them back;
Prometheus finds every replica, loads the alert rules, and the dashboard's queries answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.compose.project import REPO, Project, wait_until

pytestmark = pytest.mark.compose

DASHBOARD = REPO / "grafana" / "dashboards" / "eventhubs-kafka.json"


def _panels() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def _targets(compose: Project) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = compose.prometheus("targets")["activeTargets"]
    return found


def test_scaling_moves_partitions_and_prometheus_sees_each_replica(
    project: Callable[..., Project],
) -> None:
    compose = project()
    compose.up()
    compose.up("--scale", "consumer=2")
    first, second = compose.containers("consumer")

    wait_until(
        lambda: len(compose.owned(first, "testhub")) == len(compose.owned(second, "testhub")) == 5,
        60,
        "a 5/5 split",
    )
    assert set(compose.owned(first, "testhub")).isdisjoint(compose.owned(second, "testhub"))

    # One target per replica, up: Prometheus finds them by DNS.
    def consumers_up() -> list[dict[str, Any]]:
        up = [
            t
            for t in _targets(compose)
            if t["labels"].get("job") == "consumer" and t["health"] == "up"
        ]
        return up if len(up) == 2 else []

    wait_until(consumers_up, 60, "two consumer targets up in Prometheus")
    groups = compose.prometheus("rules")["groups"]
    assert [rule["name"] for group in groups for rule in group["rules"]], "no alert rules loaded"

    # Grafana cannot run here; its dashboard's queries can, against this
    # Prometheus: each returns series, one per replica where the panel is per
    # instance (a replica's rates need two scrapes first).
    def unanswered() -> list[str]:
        problems = []
        for title, expr in _panels():
            series = compose.prometheus("query", query=expr)["result"]
            per_replica = "by (instance" in expr and "consumer" in expr
            instances = {r["metric"].get("instance") for r in series}
            if not series or (per_replica and len(instances) != 2):
                problems.append(f"{title}: {expr} -> {len(series)} series")
        return problems

    try:
        wait_until(lambda: not unanswered(), 90, "every dashboard query to answer")
    except AssertionError:
        raise AssertionError(f"dashboard queries not answered: {unanswered()}") from None
    per_instance = compose.prometheus(
        "query", query="sum by (instance) (consumer_assigned_partitions)"
    )["result"]
    assert sorted(float(r["value"][1]) for r in per_instance) == [5.0, 5.0]

    compose.up("--scale", "consumer=1")
    (left,) = compose.containers("consumer")
    wait_until(lambda: len(compose.owned(left, "testhub")) == 10, 60, "all 10 back")
