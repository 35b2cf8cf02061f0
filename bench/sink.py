"""Case: the PostgreSQL sink's rows per second, a record at a time (``handler``) and a batch
at a time (``bulk``), and its records per second upserted into a row per key (``upsert``),
against ``COPY`` of the same rows into a table of the same shape on
the same server, in the same run: what the database itself can take; and against Kafka
Connect with Debezium's JDBC sink writing the same records (as Connect's JSON with a
schema, its columns) into the same server, at the best of its batch sizes.

A PostgreSQL server of the run's own on loopback (``harness/postgres.py``); 10 partitions,
records of about 100 B with a key and a header, as the sink's users send them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer

from bench import kafka_connect
from bench.runs import fresh_topic
from bench.stats import alternate, summary
from consumer.handler import Record
from examples.postgres_sink import sink
from harness import ServiceGroup, service_env
from harness.postgres import PostgresServer

RECORDS = 20_000
#: A record at a time is slow: fewer records, or a round takes minutes.
RECORDS_ONE_AT_A_TIME = 5_000
CONTENDERS = ("handler", "bulk", "upsert", "copy", "kafka_connect")
#: The keys of the records :func:`_fill` writes: upsert's rows.
KEYS = 300
#: Kafka Connect's batch sizes tried in each round; the best is its figure.
CONNECT_BATCH_SIZES = (500, 2_000, 5_000)
#: How often the table is counted while the sink writes.
COUNT_EVERY_S = 0.1


def _fill(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        value = f'{{"order": {n}, "customer": "c{n % KEYS}", "amount": {n % 97}.50}}'
        producer.send(
            topic,
            key=f"c{n % KEYS}".encode(),
            value=value.ljust(100).encode(),
            headers=[("source", b"bench")],
        )
    producer.flush()
    producer.close()


def _fill_for_connect(bootstrap: str, topic: str, count: int) -> None:
    """The records of :func:`_fill`, as Connect's JsonConverter reads them."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for n in range(count):
        payload = {"order_id": n, "customer": f"c{n % 300}", "amount": n % 97 + 0.5}
        value = json.dumps({"schema": kafka_connect.SCHEMA, "payload": payload}).encode()
        producer.send(
            topic, key=f"c{n % 300}".encode(), value=value, headers=[("source", b"bench")]
        )
    producer.flush()
    producer.close()


def _count(postgres: PostgresServer, table: str = "kafka_records") -> int:
    ((count,),) = postgres.query(f"SELECT count(*) FROM {table}")  # noqa: S608  (our own name)
    assert isinstance(count, int)
    return count


def _ours(
    bootstrap: str, topic: str, postgres: PostgresServer, entry: str, total: int, **settings: str
) -> float:
    """Rows a second from the first row seen to the *total*-th, counted in the table; for
    upsert, whose table holds a row per key, records the handler wrote, by its metric."""
    postgres.execute("DROP TABLE IF EXISTS kafka_records")
    postgres.execute("DROP TABLE IF EXISTS kafka_latest, kafka_latest_deleted")
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

        def written() -> int | None:
            if entry == "upsert":
                # Counted once the batch's transaction committed: the handler returned.
                return int(service.metric("consumer_handled_records_total", outcome="ok"))
            return _count_or_none(postgres)

        while (count := written()) is None or count < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{entry}: {count} rows of {total} after 600 s")
            if count and not started_at:
                started_at, started_with = time.monotonic(), count
            time.sleep(COUNT_EVERY_S)
        took = time.monotonic() - started_at
        if entry == "upsert" and (keys := _count(postgres, "kafka_latest")) != min(KEYS, total):
            raise RuntimeError(f"upsert: {keys} rows in kafka_latest, not one per key")
        return (total - started_with) / took
    finally:
        service.stop()


def _count_or_none(postgres: PostgresServer, table: str = "kafka_records") -> int | None:
    try:
        return _count(postgres, table)
    except psycopg.errors.UndefinedTable:
        return None  # the sink creates it as it starts


def _connect(bootstrap: str, topic: str, postgres: PostgresServer, total: int) -> float:
    """Kafka Connect's rows/s at the best of its batch sizes, the table new for each."""
    rates = []
    for batch_size in CONNECT_BATCH_SIZES:
        postgres.execute(f"DROP TABLE IF EXISTS {kafka_connect.TABLE}")
        rates.append(
            kafka_connect.sink(
                bootstrap,
                topic,
                postgres.port,
                lambda: _count_or_none(postgres, kafka_connect.TABLE),
                total=total,
                batch_size=batch_size,
            )
        )
    return max(rates)


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
        "upsert": int(RECORDS * scale),
        "copy": int(RECORDS * scale),
        "kafka_connect": int(RECORDS * scale),
    }
    runs: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    postgres = PostgresServer()
    try:
        postgres.start()
        with (
            fresh_topic(bootstrap, "sink") as topic,
            fresh_topic(bootstrap, "connect") as json_topic,
        ):
            _fill(bootstrap, topic, max(totals.values()))
            _fill_for_connect(bootstrap, json_topic, totals["kafka_connect"])
            for _, contender in alternate(CONTENDERS, rounds):
                if contender == "copy":
                    runs[contender].append(_copy(bootstrap, topic, postgres, totals[contender]))
                elif contender == "kafka_connect":
                    runs[contender].append(
                        _connect(bootstrap, json_topic, postgres, totals[contender])
                    )
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
    return result | {"records": totals, "connect_batch_sizes": list(CONNECT_BATCH_SIZES)}
