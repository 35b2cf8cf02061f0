"""The idempotent PostgreSQL sink (examples/postgres_sink) against a real PostgreSQL and the
real broker, with records kcat wrote: a consumer SIGKILLed mid-run and restarted, and a
second consumer joining and leaving, leave every record in the table exactly once; a
PostgreSQL restart during the run loses nothing and dead-letters nothing.

The topic is fed in parts, each after the moment it must find work at (a kill, a join, a
handback, a database down), so no step depends on how fast the sink writes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import psycopg
import pytest

from examples.postgres_sink import sink
from tests.clients import kcat
from tests.conftest import REPO, Services
from tests.postgres import PostgresServer

pytestmark = pytest.mark.faults

PARTITIONS = 4
RECORDS = 4_000


def _fill(services: Services, topic: str, numbers: range = range(RECORDS)) -> None:
    lines = "".join(f"k{n}:v{n}\n" for n in numbers)
    kcat(services.kafka.bootstrap_servers, "-P", "-t", topic, "-K", ":", stdin=lines.encode())


def _rows(postgres: PostgresServer, topic: str) -> int:
    try:
        ((count,),) = postgres.query(f"SELECT count(*) FROM kafka_records WHERE topic = '{topic}'")
    except psycopg.errors.UndefinedTable:
        return 0  # the sink creates it as it starts
    assert isinstance(count, int)
    return count


def _sink(services: Services, postgres: PostgresServer, topic: str, **settings: str) -> object:
    return services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"sink-{topic}",
        KAFKA_AUTO_OFFSET_RESET="earliest",
        CONSUMER_HANDLER="examples.postgres_sink:handler",
        SINK_DATABASE_URL=postgres.conninfo,
        LOG_MESSAGE_EVERY="0",
        **settings,
    )


def _duplicates_skipped(consumer: object) -> int:
    _, body = consumer.get("/metrics")  # type: ignore[attr-defined]
    found = re.search(r"^sink_duplicates_skipped_total (\S+)$", body, re.M)
    assert found, "the sink's counter is served on /metrics"
    return int(float(found.group(1)))


def _documented_sql() -> list[str]:
    page = (REPO / "docs" / "postgres-sink.md").read_text()
    return re.findall(r"^```sql\n(.*?)^```", page, flags=re.M | re.S)


def test_the_documented_table_is_the_one_the_sink_creates() -> None:
    assert _documented_sql()[0].startswith(sink.CREATE.strip() + ";")


def _assert_each_record_once(postgres: PostgresServer, topic: str) -> None:
    rows = postgres.query(
        f"SELECT key, value, partition, \"offset\" FROM kafka_records WHERE topic = '{topic}'"
    )
    assert sorted((bytes(k), bytes(v)) for k, v, _, _ in rows) == sorted(  # type: ignore[arg-type]
        (f"k{n}".encode(), f"v{n}".encode()) for n in range(RECORDS)
    )
    # Every offset of every partition, each once: the primary key, checked against the topic.
    by_partition: dict[int, list[int]] = {}
    for _, _, partition, offset in rows:
        by_partition.setdefault(partition, []).append(offset)  # type: ignore[arg-type]
    assert all(sorted(o) == list(range(len(o))) for o in by_partition.values())
    # The docs' check says the same.
    check = _documented_sql()[1].replace("'testhub'", f"'{topic}'")
    assert [(p, rows, missing) for p, rows, _, _, missing in postgres.query(check)] == [
        (p, len(offsets), 0) for p, offsets in sorted(by_partition.items())
    ]


def test_a_killed_consumer_and_a_rebalance_leave_each_record_once(
    services: Services, postgres: PostgresServer, new_topic: object
) -> None:
    topic = new_topic(partitions=PARTITIONS)  # type: ignore[operator]
    before_kill, while_shared, after_handback = (
        range(2_000),
        range(2_000, 3_000),
        range(3_000, RECORDS),
    )
    _fill(services, topic, before_kill)
    # Commits its first poll of at most 100 at once, then not for a minute: every row the
    # kill leaves past those is uncommitted, and comes again.
    first = _sink(
        services, postgres, topic, KAFKA_COMMIT_INTERVAL_MS="60000", KAFKA_MAX_POLL_RECORDS="100"
    )
    services.wait_until(lambda: _rows(postgres, topic) >= 800, timeout=60, what="rows written")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # type: ignore[attr-defined]
    killed_at = _rows(postgres, topic)

    again = _sink(services, postgres, topic)
    services.wait_until(
        lambda: again.events("service.started") and _duplicates_skipped(again) >= killed_at - 100,  # type: ignore[attr-defined]
        timeout=60,
        what="the uncommitted rows redelivered and skipped",
    )
    second = _sink(services, postgres, topic)
    services.wait_until(lambda: second.owned(topic), timeout=60, what="the second consumer joining")  # type: ignore[attr-defined]
    _fill(services, topic, while_shared)
    services.wait_until(
        lambda: second.metric("consumer_handled_records_total", outcome="ok") > 0,  # type: ignore[attr-defined]
        timeout=60,
        what="the second consumer sharing the work",
    )
    assert second.stop() == 0  # type: ignore[attr-defined]
    services.wait_until(
        lambda: len(again.owned(topic)) == PARTITIONS, timeout=60, what="the handback"
    )  # type: ignore[attr-defined]
    _fill(services, topic, after_handback)
    services.wait_until(lambda: _rows(postgres, topic) == RECORDS, timeout=120, what="every record")
    duplicates = _duplicates_skipped(again)
    assert again.stop() == 0  # type: ignore[attr-defined]

    _assert_each_record_once(postgres, topic)
    print(  # the figures for the notes: pytest -s shows them
        f"sink after SIGKILL: {RECORDS} records in the topic, {_rows(postgres, topic)} rows, "
        f"{killed_at} rows when killed, {duplicates} redelivered records skipped by the sink"
    )


def test_a_postgresql_restart_loses_nothing_and_dead_letters_nothing(
    services: Services, postgres: PostgresServer, new_topic: object
) -> None:
    topic = new_topic(partitions=PARTITIONS)  # type: ignore[operator]
    before_stop, while_down = range(2_000), range(2_000, RECORDS)
    _fill(services, topic, before_stop)
    sink = _sink(services, postgres, topic, CONSUMER_RETRY_BACKOFF_MS="200")
    services.wait_until(
        lambda: _rows(postgres, topic) == len(before_stop), timeout=60, what="rows written"
    )
    postgres.stop()
    _fill(services, topic, while_down)
    services.wait_until(
        lambda: sink.events("handler.retrying"),  # type: ignore[attr-defined]
        what="the sink waiting for its database",
    )
    postgres.start()
    services.wait_until(lambda: _rows(postgres, topic) == RECORDS, timeout=120, what="every record")
    retrying = sink.events("handler.retrying")  # type: ignore[attr-defined]
    assert sink.stop() == 0  # type: ignore[attr-defined]

    _assert_each_record_once(postgres, topic)
    assert all(line["until_it_works"] for line in retrying)
    assert not sink.events("record.dead_lettered")  # type: ignore[attr-defined]
    assert not sink.events("handler.failed")  # type: ignore[attr-defined]
    print(f"sink across a PostgreSQL restart: {len(retrying)} retries, {RECORDS} rows")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://sink:s3cret-pw@[unclosed/sink",  # libpq quotes it whole
        "postgresql://sink:s3cret-pw@127.0.0.1:1/sink",  # nothing listening
    ],
)
def test_a_database_that_cannot_be_had_is_one_line_without_its_password(url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "consumer"],
        env={
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "KAFKA_TOPIC": "t",
            "KAFKA_GROUP_ID": "g",
            "METRICS_PORT": "0",
            "CONSUMER_HANDLER": "examples.postgres_sink:handler",
            "SINK_DATABASE_URL": url,
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "s3cret-pw" not in output
    assert "Traceback" not in output
    (failed,) = [line for line in output.splitlines() if '"service.failed"' in line]
    assert '"handler_unavailable"' in failed
    assert "SinkUnavailable" in failed
