"""`docker compose --profile postgres up`: PostgreSQL with its volume, and the sink writing
each of the producer's records once, through a restart of the database."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.compose.project import REPO, Project, wait_until

pytestmark = pytest.mark.compose


def _rows(compose: Project) -> int:
    try:
        return int(compose.psql("SELECT count(*) FROM kafka_records")[0][0])
    except AssertionError:
        return 0  # the sink creates the table as it starts


def test_the_sink_writes_each_record_once_through_a_database_restart(
    project: Callable[..., Project],
) -> None:
    compose = project()
    services = ["kafka", "topic", "producer", "postgres", "sink"]
    compose.compose("--profile", "postgres", "up", "--detach", "--wait", *services)

    (postgres,) = compose.containers("postgres")
    mounts = compose.inspect(postgres)["Mounts"]
    assert [(m["Name"], m["Destination"]) for m in mounts] == [
        (f"{compose.name}_postgres-data", "/var/lib/postgresql/data")
    ]
    (sink,) = compose.containers("sink")
    assert compose.inspect(sink)["State"]["Health"]["Status"] == "healthy"
    wait_until(lambda: _rows(compose) >= 30, 90, "30 rows written by the sink")

    compose.compose("restart", "postgres")
    written = _rows(compose)
    wait_until(lambda: _rows(compose) >= written + 30, 120, "rows after the restart")
    assert compose.events(sink, "handler.retrying"), "the restart was waited for"
    assert not compose.events(sink, "handler.failed")

    compose.compose("stop", "producer")

    def caught_up() -> dict[int, int]:
        """The sink's own group's committed offsets, once each is the partition's end."""
        ends: dict[int, int] = {}
        for line in compose.kafka_tool(
            "kafka-consumer-groups.sh", "--describe", "--group", "postgres-sink"
        ).splitlines():
            fields = line.split()
            if fields[:2] and fields[1] == "testhub" and fields[3].isdigit():
                if fields[3] != fields[4]:  # CURRENT-OFFSET behind LOG-END-OFFSET
                    return {}
                ends[int(fields[2])] = int(fields[3])
        return ends

    committed = wait_until(caught_up, 120, "the sink's group to catch up")
    # The docs' check: each partition's rows run from offset 0 to the committed one, no gap.
    page = (REPO / "docs" / "postgres-sink.md").read_text()
    check = re.findall(r"^```sql\n(.*?)^```", page, flags=re.M | re.S)[1]
    table = {
        int(partition): (int(rows), int(missing))
        for partition, rows, _, _, missing in compose.psql(" ".join(check.split()))
    }
    assert table == {p: (end, 0) for p, end in committed.items() if end}
    print(f"postgres profile: {sum(r for r, _ in table.values())} rows, each once")
