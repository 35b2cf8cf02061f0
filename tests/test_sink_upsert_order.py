"""Upsert never goes backwards, and a tombstone deletes: docs/postgres-sink.md's promises for
``examples.postgres_sink:upsert``, checked batch by batch against a real PostgreSQL, with
records redelivered and replayed in every order a crash or a reset of offsets can give."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from consumer.handler import Record
from examples.postgres_sink import sink
from harness.postgres import PostgresServer

TOPIC = "orders"


def _record(offset: int, key: bytes, value: bytes | None, partition: int = 0) -> Record:
    return Record(TOPIC, partition, offset, 1_700_000_000_000, key, value, [])


@pytest.fixture
def upsert(postgres: PostgresServer) -> Iterator[sink.Sink]:
    writer = sink.Sink(postgres.conninfo, sink.LATEST_TABLE)
    yield writer
    writer.close()


def _rows(postgres: PostgresServer) -> dict[bytes, tuple[object, ...]]:
    rows = postgres.query('SELECT key, partition, "offset", value FROM kafka_latest')
    return {bytes(k): (p, o, None if v is None else bytes(v)) for k, p, o, v in rows}  # type: ignore[arg-type]


def _deleted(postgres: PostgresServer) -> dict[bytes, tuple[object, ...]]:
    rows = postgres.query('SELECT key, partition, "offset" FROM kafka_latest_deleted')
    return {bytes(k): (p, o) for k, p, o in rows}  # type: ignore[arg-type]


def _superseded() -> float:
    return REGISTRY.get_sample_value("sink_records_superseded_total") or 0.0


def test_a_tombstone_deletes_the_row_and_no_older_record_brings_it_back(
    postgres: PostgresServer, upsert: sink.Sink
) -> None:
    upsert.write_all([_record(0, b"a", b"a0"), _record(1, b"b", b"b1"), _record(2, b"a", b"a2")])
    assert _rows(postgres) == {b"a": (0, 2, b"a2"), b"b": (0, 1, b"b1")}

    upsert.write_all([_record(3, b"a", None)])
    assert _rows(postgres) == {b"b": (0, 1, b"b1")}
    assert _deleted(postgres) == {b"a": (0, 3)}

    # Redelivered after a crash, a batch at a time, each older than the tombstone or it.
    before = _superseded()
    for offset, value in ((0, b"a0"), (2, b"a2"), (3, None)):
        upsert.write_all([_record(offset, b"a", value)])
    assert _superseded() - before == 3
    assert _rows(postgres) == {b"b": (0, 1, b"b1")}
    assert _deleted(postgres) == {b"a": (0, 3)}


def test_a_value_after_the_tombstone_takes_the_key_back_for_good(
    postgres: PostgresServer, upsert: sink.Sink
) -> None:
    upsert.write_all([_record(0, b"a", b"a0"), _record(1, b"a", None)])
    assert (_rows(postgres), _deleted(postgres)) == ({}, {b"a": (0, 1)})

    upsert.write_all([_record(2, b"a", b"a2")])
    assert (_rows(postgres), _deleted(postgres)) == ({b"a": (0, 2, b"a2")}, {})

    # The whole partition read again by a new group: nothing moves.
    before = _superseded()
    upsert.write_all([_record(0, b"a", b"a0"), _record(1, b"a", None)])
    upsert.write_all([_record(1, b"a", None)])
    upsert.write_all([_record(2, b"a", b"a2")])
    assert (_rows(postgres), _deleted(postgres)) == ({b"a": (0, 2, b"a2")}, {})
    assert _superseded() - before == 4  # each of them, the first batch's older one too


def test_a_tombstone_for_a_key_never_seen_still_keeps_older_values_out(
    postgres: PostgresServer, upsert: sink.Sink
) -> None:
    upsert.write_all([_record(7, b"c", None)])
    upsert.write_all([_record(5, b"c", b"c5")])  # read late: a replay from an earlier offset
    assert (_rows(postgres), _deleted(postgres)) == ({}, {b"c": (0, 7)})


def test_a_key_moved_to_another_partition_is_written_by_the_last_record(
    postgres: PostgresServer, upsert: sink.Sink
) -> None:
    """Partitions added: offsets of two partitions cannot be compared, so the last one wins."""
    upsert.write_all([_record(9, b"d", b"d9", partition=0)])
    upsert.write_all([_record(1, b"d", None, partition=3)])
    assert (_rows(postgres), _deleted(postgres)) == ({}, {b"d": (3, 1)})
    upsert.write_all([_record(10, b"d", b"d10", partition=0)])
    assert (_rows(postgres), _deleted(postgres)) == ({b"d": (0, 10, b"d10")}, {})
