"""``examples.postgres_sink:upsert`` against a real PostgreSQL and the real broker, with records
kcat wrote: each key at the value of its last record, a tombstone's key deleted, a keyless
record dead-lettered; after a SIGKILL and a PostgreSQL restart in one run, and when the
whole topic is read again. The kill lands while batches wait inside their transactions.

The topic is fed in parts, each after the moment it must find work at, so no step depends
on how fast the sink writes."""

from __future__ import annotations

import signal

import pytest
from kafka import KafkaProducer

from harness.postgres import PostgresServer
from tests.clients import read_all
from tests.conftest import Services
from tests.groups import committed as committed_by
from tests.sinks import fill, start_sink, table_locked, wait_for_count

pytestmark = pytest.mark.faults

PARTITIONS = 4
KEYS = 300
RECORDS = 4_000


def _latest(postgres: PostgresServer, topic: str) -> dict[bytes, tuple[object, ...]]:
    rows = postgres.query(
        'SELECT key, value, "offset", written_at FROM kafka_latest '
        f"WHERE topic = '{topic}' ORDER BY key"
    )
    return {bytes(key): (value, offset, at) for key, value, offset, at in rows}  # type: ignore[arg-type]


def _deleted(postgres: PostgresServer, topic: str) -> set[bytes]:
    rows = postgres.query(f"SELECT key FROM kafka_latest_deleted WHERE topic = '{topic}'")
    return {bytes(key) for (key,) in rows}  # type: ignore[arg-type]


def _the_topics_last_per_key(services: Services, topic: str) -> dict[bytes, bytes | None]:
    """Each key's last record as kcat reads the topic back: its value, None for a tombstone."""
    last: dict[bytes, tuple[int, bytes | None]] = {}
    for record in read_all(services.kafka.bootstrap_servers, topic):
        key, value = record["key"].encode(), record["payload"]
        if record["offset"] >= last.get(key, (-1, None))[0]:
            last[key] = (record["offset"], None if value is None else value.encode())
    return {key: value for key, (_, value) in last.items()}


def _records(numbers: range) -> list[tuple[str, str | None]]:
    """Record n is key k(n mod 300), a tombstone when n is a multiple of 9, else value vn."""
    return [(f"k{n % KEYS}", None if n % 9 == 0 else f"v{n}") for n in numbers]


def test_a_kill_and_a_postgresql_restart_leave_each_key_at_its_last_record(
    services: Services, postgres: PostgresServer, new_topic: object
) -> None:
    topic = new_topic(partitions=PARTITIONS)  # type: ignore[operator]
    bootstrap, group = services.kafka.bootstrap_servers, f"sink-{topic}"
    first_commit, uncommitted, mid_batch, while_down = (
        range(200),
        range(200, 1_500),
        range(1_500, 2_500),
        range(2_500, RECORDS),
    )
    fill(services, topic, _records(first_commit))
    # Commits once it has done some, then not for a minute: what it writes after that is
    # past the group's committed offsets, and comes again after the kill.
    first = start_sink(
        services, postgres, topic, "upsert",
        KAFKA_COMMIT_INTERVAL_MS="60000", KAFKA_MAX_POLL_RECORDS="100",
    )  # fmt: skip
    services.wait_until(
        lambda: sum(committed_by(bootstrap, group, topic, PARTITIONS).values()) > 0,
        timeout=60,
        what="the first records written and committed",
    )
    fill(services, topic, _records(uncommitted))
    services.wait_until(
        lambda: first.metric("consumer_handled_records_total", outcome="ok") == 1_500,  # type: ignore[attr-defined]
        timeout=60,
        what="records written",
    )
    with table_locked(postgres, "kafka_latest") as waiting:
        fill(services, topic, _records(mid_batch))
        services.wait_until(waiting, timeout=60, what="a batch inside its transaction")
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # type: ignore[attr-defined]
    committed = sum(committed_by(bootstrap, group, topic, PARTITIONS).values())
    handled = 1_500
    assert committed < handled  # records the kill left written but uncommitted

    again = start_sink(services, postgres, topic, "upsert", CONSUMER_RETRY_BACKOFF_MS="200")
    # Each of them comes again, at an offset its key's row (or its tombstone) already holds.
    wait_for_count(
        services, again, "sink_records_superseded_total", handled - committed,
        "the uncommitted records redelivered and superseded",
    )  # fmt: skip
    postgres.stop()
    fill(services, topic, _records(while_down))
    services.wait_until(
        lambda: again.events("handler.retrying"),  # type: ignore[attr-defined]
        what="the sink waiting for its database",
    )
    postgres.start()

    expected = _the_topics_last_per_key(services, topic)
    assert len(expected) == KEYS
    live = {key: value for key, value in expected.items() if value is not None}
    gone = set(expected) - set(live)
    assert live, "the run ends with keys of both kinds"
    assert gone

    def latest_values() -> dict[bytes, object]:
        return {key: bytes(value) for key, (value, _, _) in _latest(postgres, topic).items()}  # type: ignore[arg-type]

    services.wait_until(lambda: latest_values() == live, timeout=120, what="each key's last value")
    assert _deleted(postgres, topic) == gone
    superseded = int(again.metric("sink_records_superseded_total"))  # type: ignore[attr-defined]
    assert again.stop() == 0  # type: ignore[attr-defined]
    assert not again.events("record.dead_lettered")  # type: ignore[attr-defined]
    assert all(line["until_it_works"] for line in again.events("handler.retrying"))  # type: ignore[attr-defined]
    print(  # the figures for the notes: pytest -s shows them
        f"upsert after SIGKILL and a PostgreSQL restart: {RECORDS} records, {len(live)} keys "
        f"live, {len(gone)} deleted, {handled} handled at the kill, {committed} committed, "
        f"{superseded} superseded after"
    )


def test_each_key_keeps_its_latest_value_and_a_replay_never_puts_an_older_one_back(
    services: Services, postgres: PostgresServer, new_topic: object
) -> None:
    topic, dead = new_topic(partitions=1), new_topic(partitions=1)  # type: ignore[operator]
    producer = KafkaProducer(bootstrap_servers=services.kafka.bootstrap_servers)
    for version in (1, 2):
        for n in range(10):
            producer.send(topic, key=f"k{n}".encode(), value=f"v{version}".encode())
    producer.send(topic, key=b"k3", value=None)  # a tombstone: offset 20
    producer.send(topic, key=None, value=b"no key")  # offset 21
    producer.flush()
    producer.close()

    sink = start_sink(services, postgres, topic, "upsert", CONSUMER_DEAD_LETTER_TOPIC=dead)
    services.wait_until(
        lambda: sink.events("record.dead_lettered") and len(_latest(postgres, topic)) == 9,  # type: ignore[attr-defined]
        timeout=60,
        what="every key written and the keyless record dead-lettered",
    )
    assert sink.stop() == 0  # type: ignore[attr-defined]
    latest = _latest(postgres, topic)
    assert {key: (value, offset) for key, (value, offset, _) in latest.items()} == {
        f"k{n}".encode(): (b"v2", 10 + n) for n in range(10) if n != 3
    }
    assert _deleted(postgres, topic) == {b"k3"}
    (letter,) = sink.events("record.dead_lettered")  # type: ignore[attr-defined]
    assert letter["offset"] == 21
    assert "has none" in letter["error"]

    # Everything again, from the start, a few records a batch: the old values come first.
    again = start_sink(
        services, postgres, topic, "upsert",
        KAFKA_GROUP_ID=f"again-{topic}", KAFKA_MAX_POLL_RECORDS="4",
        CONSUMER_BATCH_MAX_RECORDS="4", CONSUMER_DEAD_LETTER_TOPIC=dead,
    )  # fmt: skip
    services.wait_until(
        lambda: len(again.events("record.dead_lettered")) == 1,  # type: ignore[attr-defined]
        timeout=60,
        what="the redelivery read to its end",
    )
    superseded = int(again.metric("sink_records_superseded_total"))  # type: ignore[attr-defined]
    assert again.stop() == 0  # type: ignore[attr-defined]
    assert _latest(postgres, topic) == latest  # not a row changed, nor rewritten
    assert _deleted(postgres, topic) == {b"k3"}
    assert superseded == 21  # every keyed record older than its row or tombstone, or equal
