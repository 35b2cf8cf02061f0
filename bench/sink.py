"""Case: the PostgreSQL sink's rows per second, a record at a time (``handler``) and a batch
at a time (``bulk``), against ``COPY`` of the same rows into a table of the same shape on
the same server, in the same run: what the database itself can take.

A PostgreSQL server of the run's own on loopback (``harness/postgres.py``); 10 partitions,
records of about 100 B with a key and a header, as the sink's users send them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer

from bench.runs import fresh_topic
from bench.stats import alternate, summary
from consumer.handler import Record
from examples.postgres_sink import sink
from harness import ServiceGroup, service_env
from harness.postgres import PostgresServer

RECORDS = 20_000
#: A record at a time is slow: fewer records, or a round takes minutes.
RECORDS_ONE_AT_A_TIME = 5_000
CONTENDERS = ("handler", "bulk", "copy")
#: How often the table is counted while the sink writes.
COUNT_EVERY_S = 0.1


def _fill(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        value = f'{{"order": {n}, "customer": "c{n % 300}", "amount": {n % 97}.50}}'
        producer.send(
            topic,
            key=f"c{n % 300}".encode(),
            value=value.ljust(100).encode(),
            headers=[("source", b"bench")],
        )
    producer.flush()
    producer.close()


def _count(postgres: PostgresServer) -> int:
    ((count,),) = postgres.query("SELECT count(*) FROM kafka_records")
    assert isinstance(count, int)
    return count


def _ours(
    bootstrap: str, topic: str, postgres: PostgresServer, entry: str, total: int, **settings: str
) -> float:
    """Rows a second from the first row seen to the *total*-th, counted in the table."""
    postgres.execute("DROP TABLE IF EXISTS kafka_records")
    env = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"sink-{entry}-{uuid.uuid4().hex[:8]}",
        "KAFKA_AUTO_OFFSET_RESET": "earliest",
        "CONSUMER_HANDLER": f"examples.postgres_sink:{entry}",
        "SINK_DATABASE_URL": postgres.conninfo,
        "LOG_MESSAGE_EVERY": "0",
    }
    group = ServiceGroup(service_env(bootstrap, **(env | settings)))
    service = group.start("consumer")
    try:
        group.wait_until(lambda: service.events("service.started"), 60)
        started_at, started_with = 0.0, 0
        deadline = time.monotonic() + 600
        while (count := _count_or_none(postgres)) is None or count < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{entry}: {count} rows of {total} after 600 s")
            if count and not started_at:
                started_at, started_with = time.monotonic(), count
            time.sleep(COUNT_EVERY_S)
        return (total - started_with) / (time.monotonic() - started_at)
    finally:
        service.stop()


def _count_or_none(postgres: PostgresServer) -> int | None:
    try:
        return _count(postgres)
    except psycopg.errors.UndefinedTable:
        return None  # the sink creates it as it starts


def _copy(bootstrap: str, topic: str, postgres: PostgresServer, total: int) -> float:
    """The same rows, read from the topic beforehand, copied into the same table."""
    reader = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    rows: list[tuple[object, ...]] = []
    while len(rows) < total:
        for records in reader.poll(timeout_ms=1000).values():
            rows += [sink.row_of(Record(*(getattr(r, f) for f in Record._fields))) for r in records]
    reader.close()
    postgres.execute("DROP TABLE IF EXISTS kafka_records")
    with psycopg.connect(postgres.conninfo, autocommit=True) as connection:
        connection.execute(sink.CREATE)
        started = time.monotonic()
        columns = sink.COPY_IN.replace("kafka_records_incoming", "kafka_records")
        with connection.transaction(), connection.cursor() as cursor, cursor.copy(columns) as copy:
            for row in rows[:total]:
                copy.write_row(row)
        return total / (time.monotonic() - started)


def sink_case(bootstrap: str, rounds: int, scale: float = 1.0) -> dict[str, Any]:
    """Rows/s per contender, alternated round by round, on one topic filled once."""
    totals = {
        "handler": int(RECORDS_ONE_AT_A_TIME * scale),
        "bulk": int(RECORDS * scale),
        "copy": int(RECORDS * scale),
    }
    runs: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    postgres = PostgresServer()
    try:
        postgres.start()
        with fresh_topic(bootstrap, "sink") as topic:
            _fill(bootstrap, topic, max(totals.values()))
            for _, contender in alternate(CONTENDERS, rounds):
                if contender == "copy":
                    runs[contender].append(_copy(bootstrap, topic, postgres, totals[contender]))
                else:
                    runs[contender].append(
                        _ours(bootstrap, topic, postgres, contender, totals[contender])
                    )
    finally:
        postgres.close()
    result: dict[str, Any] = {c: {"rows_per_s": summary(runs[c])} for c in CONTENDERS}
    copy = result["copy"]["rows_per_s"]["median"]
    for contender in CONTENDERS:
        result[contender]["vs_copy"] = round(result[contender]["rows_per_s"]["median"] / copy, 3)
    return result | {"records": totals}
