"""The sink: a connection per thread, one row per record, keyed by where Kafka keeps it.

Two handlers append to ``kafka_records``: :func:`bulk`, a batch handler,
copies a batch's rows in with ``COPY`` and moves them to the table in one
statement, one transaction per batch; :func:`handler` inserts a record at a
time, each its own transaction. A third, :func:`upsert`, keeps one row per
key in ``kafka_latest``: the value of the highest offset seen, so a record
delivered again, or replayed, never puts an older value back; a tombstone
deletes the key's row.

At least once means a record is sometimes delivered twice: a consumer
killed before its commit hands its last records to the next owner of the
partition. The row's primary key is the record's topic, partition and
offset, and the insert does nothing on a conflict, so a second delivery
writes nothing, and is counted (``sink_duplicates_skipped_total``).

PostgreSQL down or restarting is :class:`DependencyUnavailable`: the
consumer pauses the partition and tries the record again until it works,
and nothing is dead-lettered for an outage. The broken connection is
dropped and a new one made on the next try.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from prometheus_client import Counter

from common.config import secret
from consumer.handler import (
    BatchFailed,
    BatchHandler,
    DependencyUnavailable,
    Handler,
    Record,
    RecordRefused,
    batch,
)

#: The table the records go to (named as such in CREATE and INSERT).
TABLE = "kafka_records"

CREATE = """
CREATE TABLE IF NOT EXISTS kafka_records (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         bytea,
    value       bytea,
    headers     jsonb       NOT NULL,
    "timestamp" timestamptz,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
)
"""
INSERT = """
INSERT INTO kafka_records (topic, partition, "offset", key, value, headers, "timestamp")
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, partition, "offset") DO NOTHING
"""
#: A batch's rows, copied into a table of the session's own (emptied at each commit),
#: then moved to the table in one statement that skips the rows already there.
STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS kafka_records_incoming
    (LIKE kafka_records INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
COPY_IN = """
COPY kafka_records_incoming (topic, partition, "offset", key, value, headers, "timestamp")
FROM STDIN
"""
MOVE = """
WITH moved AS (
    INSERT INTO kafka_records SELECT * FROM kafka_records_incoming
    ON CONFLICT (topic, partition, "offset") DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM moved
"""

LATEST_CREATE = """
CREATE TABLE IF NOT EXISTS kafka_latest (
    topic       text        NOT NULL,
    key         bytea       NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    value       bytea,
    headers     jsonb       NOT NULL,
    "timestamp" timestamptz,
    written_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, key)
);
CREATE TABLE IF NOT EXISTS kafka_latest_deleted (
    topic       text        NOT NULL,
    key         bytea       NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, key)
)
"""
LATEST_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS kafka_latest_incoming
    (LIKE kafka_latest INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
LATEST_COPY_IN = """
COPY kafka_latest_incoming (topic, partition, "offset", key, value, headers, "timestamp")
FROM STDIN
"""
#: A key's row changes only for a record past the one it holds: never backwards. A tombstone
#: deletes the row and leaves its place in kafka_latest_deleted, which older records of the
#: key then cannot pass; a later value takes the key back. Per key, one of the two tables
#: holds the highest offset seen.
LATEST_MOVE = """
WITH fresh AS (
    SELECT * FROM kafka_latest_incoming incoming
    WHERE NOT EXISTS (
        SELECT FROM kafka_latest_deleted gone
        WHERE (gone.topic, gone.key, gone.partition)
            = (incoming.topic, incoming.key, incoming.partition)
        AND gone."offset" >= incoming."offset"
    )
), upserted AS (
    INSERT INTO kafka_latest AS kept SELECT * FROM fresh WHERE value IS NOT NULL
    ON CONFLICT (topic, key) DO UPDATE SET
        partition = EXCLUDED.partition, "offset" = EXCLUDED."offset", value = EXCLUDED.value,
        headers = EXCLUDED.headers, "timestamp" = EXCLUDED."timestamp",
        written_at = EXCLUDED.written_at
    WHERE kept.partition <> EXCLUDED.partition OR kept."offset" < EXCLUDED."offset"
    RETURNING 1
), revived AS (
    DELETE FROM kafka_latest_deleted gone USING fresh
    WHERE fresh.value IS NOT NULL AND (gone.topic, gone.key) = (fresh.topic, fresh.key)
), deleted AS (
    DELETE FROM kafka_latest kept USING fresh
    WHERE fresh.value IS NULL AND (kept.topic, kept.key) = (fresh.topic, fresh.key)
    AND (kept.partition <> fresh.partition OR kept."offset" < fresh."offset")
), marked AS (
    INSERT INTO kafka_latest_deleted AS gone (topic, key, partition, "offset")
    SELECT topic, key, partition, "offset" FROM fresh
    WHERE value IS NULL AND NOT EXISTS (
        SELECT FROM kafka_latest kept
        WHERE (kept.topic, kept.key, kept.partition) = (fresh.topic, fresh.key, fresh.partition)
        AND kept."offset" > fresh."offset"
    )
    ON CONFLICT (topic, key) DO UPDATE SET
        partition = EXCLUDED.partition, "offset" = EXCLUDED."offset",
        deleted_at = EXCLUDED.deleted_at
    WHERE gone.partition <> EXCLUDED.partition OR gone."offset" < EXCLUDED."offset"
    RETURNING 1
)
SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM marked)
"""


@dataclass(frozen=True)
class Table:
    """Where a sink writes, and how a batch gets there: its statements."""

    create: str
    stage: str
    copy_in: str
    move: str
    #: One row per key, the latest: a record needs a key, and a batch keeps its last per key.
    latest: bool = False


RECORDS_TABLE = Table(CREATE, STAGE, COPY_IN, MOVE)
LATEST_TABLE = Table(LATEST_CREATE, LATEST_STAGE, LATEST_COPY_IN, LATEST_MOVE, latest=True)

#: How long connecting may take before the database counts as unavailable.
CONNECT_TIMEOUT_S = 5

WRITTEN = Counter("sink_rows_written", "Records the sink wrote as new or changed rows.")
DUPLICATES = Counter(
    "sink_duplicates_skipped",
    "Records delivered again whose row was there already: written once, not twice.",
)
SUPERSEDED = Counter(
    "sink_records_superseded",
    "Records upsert did not write: their key's row holds a later offset.",
)


class SinkUnavailable(Exception):
    """The database cannot be reached or named; its message never holds a password."""


def bulk() -> contextlib.AbstractContextManager[BatchHandler]:
    """The sink as a batch handler: one transaction per batch. Connects once at start
    (and creates the table); closes at stop. The URL as for :func:`handler`."""
    return _batches(RECORDS_TABLE)


def upsert() -> contextlib.AbstractContextManager[BatchHandler]:
    """One row per key in ``kafka_latest``, a batch per transaction; a tombstone deletes
    the key's row. The URL as for :func:`handler`."""
    return _batches(LATEST_TABLE)


@contextlib.contextmanager
def _batches(table: Table) -> Iterator[BatchHandler]:
    sink = Sink(secret("SINK_DATABASE_URL") or "", table)

    @batch
    def write_all(records: Sequence[Record]) -> None:
        sink.write_all(records)

    try:
        yield write_all
    finally:
        sink.close()


@contextlib.contextmanager
def handler() -> Iterator[Handler]:
    """Connects once at start (and creates the table); closes at stop.

    The URL may be given as a file, ``SINK_DATABASE_URL_FILE`` (a Docker or
    Kubernetes secret); a bad file is a ConfigError, exit status 2.
    """
    sink = Sink(secret("SINK_DATABASE_URL") or "")
    try:
        yield sink.write
    finally:
        sink.close()


class Sink:
    """A connection per thread, autocommit: each write is its own transaction, done when it
    returns.

    The consumer runs a batch handler's batches of different partitions side by
    side, on threads: each thread writes on a connection of its own, so one
    batch's round trips never wait for another's.
    """

    def __init__(self, conninfo: str, table: Table = RECORDS_TABLE) -> None:
        self._conninfo = conninfo
        self._table = table
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every thread's connection, to close at stop.
        self._connections: set[psycopg.Connection[tuple[object, ...]]] = set()
        # At start a database that cannot be reached is the consumer's
        # service.failed reason=handler_unavailable: the orchestrator restarts it.
        try:
            self._connection_now()
        except psycopg.Error as exc:
            raise SinkUnavailable(self._said(exc)) from None

    def write(self, record: Record) -> None:
        try:
            inserted = self._connection_now().execute(INSERT, row_of(record)).rowcount
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise DependencyUnavailable(f"PostgreSQL: {self._said(exc)}") from None
        (WRITTEN if inserted else DUPLICATES).inc()

    def write_all(self, records: Sequence[Record]) -> None:
        """Write *records* in one transaction: all their rows, or none.

        A row the table refuses (a value it cannot hold) fails the whole batch
        as RecordRefused, so the consumer hands the records over one at a time
        at once, and only the one refused is dead-lettered. Upsert names a
        record without a key (``BatchFailed``) once those before it are written.
        """
        given = len(records)
        if self._table.latest:
            keyless = next((i for i, r in enumerate(records) if r.key is None), None)
            if keyless is not None:
                if keyless:
                    self.write_all(records[:keyless])
                refused = RecordRefused("upsert keeps one row per key, and the record has none")
                raise BatchFailed(keyless, refused)
            # The last of each key: one statement may not change a row twice. In key
            # order, so that two batches sharing keys lock their rows in the same order.
            last = {record.key: record for record in records}
            records = [last[key] for key in sorted(last, key=lambda k: k or b"")]
        rows = [row_of(record) for record in records]
        try:
            written = self._write_rows(rows)
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise DependencyUnavailable(f"PostgreSQL: {self._said(exc)}") from None
        except psycopg.DataError as exc:
            raise RecordRefused(f"PostgreSQL refused the row: {self._said(exc)}") from None
        WRITTEN.inc(written)
        (SUPERSEDED if self._table.latest else DUPLICATES).inc(given - written)

    def _write_rows(self, rows: Sequence[tuple[object, ...]]) -> int:
        """Copy *rows* in and move them to the table, in one transaction: rows written."""
        connection = self._connection_now()
        with connection.transaction(), connection.cursor() as cursor:
            with cursor.copy(self._table.copy_in) as copy:
                for row in rows:
                    copy.write_row(row)
            (written,) = cursor.execute(self._table.move).fetchone() or (0,)
        assert isinstance(written, int)
        return written

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def _connection_now(self) -> psycopg.Connection[tuple[object, ...]]:
        """This thread's connection, made if it has none (or lost it)."""
        connection: psycopg.Connection[tuple[object, ...]] | None = getattr(
            self._local, "connection", None
        )
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.add(connection)
        return connection

    def _drop_connection(self) -> None:
        """Close this thread's connection after an outage: the next write makes another."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._connections.discard(connection)
            connection.close()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        connection = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        # Each statement a span when tracing is on: the INSERT a child of the
        # consumer's `process` span, which the handler runs inside. Off, a no-op.
        PsycopgInstrumentor().instrument_connection(connection)
        connection.execute(self._table.create)
        connection.execute(self._table.stage)
        return connection

    def _said(self, exc: psycopg.Error) -> str:
        """*exc* in a line fit for a log: libpq quotes a connection string it cannot
        parse whole, password and all, so that is said without it."""
        if isinstance(exc, psycopg.ProgrammingError):
            return "SINK_DATABASE_URL is not a libpq connection string or URI"
        said = " ".join(str(exc).split())[:200]
        for password in (_password(self._conninfo), os.environ.get("PGPASSWORD")):
            if password:
                said = said.replace(password, "***")
        return said


def _password(conninfo: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


def row_of(record: Record) -> tuple[object, ...]:
    """The table's row for *record*, in the column order of COPY_IN."""
    # Header values are bytes; JSON holds text: undecodable bytes as \\x escapes.
    headers = [
        [name, None if value is None else value.decode("utf-8", "backslashreplace")]
        for name, value in record.headers
    ]
    created = (
        datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp >= 0 else None
    )
    return (
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        json.dumps(headers),
        created,
    )
