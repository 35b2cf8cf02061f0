"""The idempotent PostgreSQL sink (examples/postgres_sink) against a real PostgreSQL and the
real broker, with records kcat wrote, a batch at a time (``bulk``) and a record at a time
(``handler``): a consumer SIGKILLed mid-run and restarted, and a second consumer joining
and leaving, leave every record in the table exactly once; a PostgreSQL restart during the
run loses nothing and dead-letters nothing; a row the table refuses is dead-lettered alone.

The kill lands while the sink's writes wait inside their transactions, on a lock the test
holds. The topic is fed in parts, each after the moment it must find work at (a kill, a join, a
handback, a database down), so no step depends on how fast the sink writes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import psycopg
import pytest
from kafka import KafkaProducer

from examples.postgres_sink import sink
from harness.postgres import PostgresServer
from tests.conftest import REPO, Services
from tests.groups import committed as committed_by
from tests.sinks import fill, start_sink, table_locked, wait_for_count

pytestmark = pytest.mark.faults

PARTITIONS = 4
RECORDS = 4_000
#: The sink's two handlers: a batch at a time, and a record at a time.
HANDLERS = pytest.mark.parametrize("entry", ["bulk", "handler"])


def _fill(services: Services, topic: str, numbers: range = range(RECORDS)) -> None:
    fill(services, topic, ((f"k{n}", f"v{n}") for n in numbers))


def _rows(postgres: PostgresServer, topic: str) -> int:
    try:
        ((count,),) = postgres.query(f"SELECT count(*) FROM kafka_records WHERE topic = '{topic}'")
    except psycopg.errors.UndefinedTable:
        return 0  # the sink creates it as it starts
    assert isinstance(count, int)
    return count


def _documented_sql() -> list[str]:
    page = (REPO / "docs" / "postgres-sink.md").read_text()
    return re.findall(r"^```sql\n(.*?)^```", page, flags=re.M | re.S)


def test_the_documented_tables_are_the_ones_the_sink_creates() -> None:
    assert _documented_sql()[0].startswith(sink.CREATE.strip() + ";")
    assert _documented_sql()[2].startswith(sink.LATEST_CREATE.strip() + ";")


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


@HANDLERS
def test_a_killed_consumer_and_a_rebalance_leave_each_record_once(
    services: Services, postgres: PostgresServer, new_topic: object, entry: str
) -> None:
    topic = new_topic(partitions=PARTITIONS)  # type: ignore[operator]
    first_commit, uncommitted, mid_batch, while_shared, after_handback = (
        range(200),
        range(200, 1_200),
        range(1_200, 2_000),
        range(2_000, 3_000),
        range(3_000, RECORDS),
    )
    _fill(services, topic, first_commit)
    # Commits once it has done some, then not for a minute: every row written after the
    # rest is fed is past the group's committed offsets, and comes again after the kill.
    first = start_sink(
        services,
        postgres,
        topic,
        entry,
        KAFKA_COMMIT_INTERVAL_MS="60000",
        KAFKA_MAX_POLL_RECORDS="100",
    )
    bootstrap = services.kafka.bootstrap_servers
    services.wait_until(
        lambda: (
            _rows(postgres, topic) == len(first_commit)
            and sum(committed_by(bootstrap, f"sink-{topic}", topic, PARTITIONS).values()) > 0
        ),
        timeout=60,
        what="the first rows written and committed",
    )
    _fill(services, topic, uncommitted)
    services.wait_until(lambda: _rows(postgres, topic) == 1_200, timeout=60, what="rows written")
    with table_locked(postgres, "kafka_records") as waiting:
        _fill(services, topic, mid_batch)
        services.wait_until(waiting, timeout=60, what="a write inside its transaction")
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # type: ignore[attr-defined]
    killed_at = _rows(postgres, topic)
    committed = sum(committed_by(bootstrap, f"sink-{topic}", topic, PARTITIONS).values())
    assert committed < killed_at  # rows the kill left uncommitted

    again = start_sink(services, postgres, topic, entry)
    wait_for_count(
        services, again, "sink_duplicates_skipped_total", killed_at - committed,
        "the uncommitted rows redelivered and skipped",
    )  # fmt: skip
    second = start_sink(services, postgres, topic, entry)
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
    duplicates = int(again.metric("sink_duplicates_skipped_total"))  # type: ignore[attr-defined]
    assert again.stop() == 0  # type: ignore[attr-defined]

    _assert_each_record_once(postgres, topic)
    print(  # the figures for the notes: pytest -s shows them
        f"sink ({entry}) after SIGKILL: {RECORDS} records in the topic, "
        f"{_rows(postgres, topic)} rows, {killed_at} rows when killed, "
        f"{duplicates} redelivered records skipped by the sink"
    )


@HANDLERS
def test_a_postgresql_restart_loses_nothing_and_dead_letters_nothing(
    services: Services, postgres: PostgresServer, new_topic: object, entry: str
) -> None:
    topic = new_topic(partitions=PARTITIONS)  # type: ignore[operator]
    before_stop, while_down = range(2_000), range(2_000, RECORDS)
    _fill(services, topic, before_stop)
    sink = start_sink(services, postgres, topic, entry, CONSUMER_RETRY_BACKOFF_MS="200")
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
    print(f"sink ({entry}) across a PostgreSQL restart: {len(retrying)} retries, {RECORDS} rows")


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


def test_a_row_the_table_refuses_is_dead_lettered_alone_and_its_batch_written(
    services: Services, postgres: PostgresServer, new_topic: object
) -> None:
    """A header holding NUL, which jsonb cannot: its batch fails whole, its records are
    handed over one at a time, and only that one goes to the dead-letter topic."""
    topic, dead = new_topic(partitions=1), new_topic(partitions=1)  # type: ignore[operator]
    producer = KafkaProducer(bootstrap_servers=services.kafka.bootstrap_servers)
    for n in range(300):
        headers = [("note", b"nul\x00" if n == 150 else b"fine")]
        producer.send(topic, key=f"k{n}".encode(), value=f"v{n}".encode(), headers=headers)
    producer.flush()
    producer.close()
    sink = start_sink(services, postgres, topic, "bulk", CONSUMER_DEAD_LETTER_TOPIC=dead)
    services.wait_until(
        lambda: _rows(postgres, topic) == 299 and sink.events("record.dead_lettered"),  # type: ignore[attr-defined]
        timeout=60,
        what="the batch written and the refused row dead-lettered",
    )
    assert sink.stop() == 0  # type: ignore[attr-defined]

    (letter,) = sink.events("record.dead_lettered")  # type: ignore[attr-defined]
    assert (letter["offset"], letter["attempts"]) == (150, 1)
    assert "RecordRefused" in letter["error"]
    written = postgres.query(f"SELECT \"offset\" FROM kafka_records WHERE topic = '{topic}'")
    assert sorted(o for (o,) in written) == [n for n in range(300) if n != 150]  # type: ignore[type-var]
