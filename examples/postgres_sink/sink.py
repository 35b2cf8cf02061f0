"""The sink: one connection per process, one row per record, keyed by where Kafka keeps it.

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
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from prometheus_client import Counter

from common.config import secret
from consumer.handler import DependencyUnavailable, Handler, Record

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
#: How long connecting may take before the database counts as unavailable.
CONNECT_TIMEOUT_S = 5

WRITTEN = Counter("sink_rows_written", "Records the sink wrote as new rows.")
DUPLICATES = Counter(
    "sink_duplicates_skipped",
    "Records delivered again whose row was there already: written once, not twice.",
)


class SinkUnavailable(Exception):
    """The database cannot be reached or named; its message never holds a password."""


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
    """One connection, autocommit: each insert is its own transaction, done when it returns."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        # At start a database that cannot be reached is the consumer's
        # service.failed reason=handler_unavailable: the orchestrator restarts it.
        try:
            self._connection: psycopg.Connection[tuple[object, ...]] | None = self._connect()
            self._connection.execute(CREATE)
        except psycopg.Error as exc:
            raise SinkUnavailable(self._said(exc)) from None

    def write(self, record: Record) -> None:
        try:
            connection = self._connection or self._connect()
            self._connection = connection
            inserted = connection.execute(INSERT, _row(record)).rowcount
        except psycopg.OperationalError as exc:
            self.close()
            raise DependencyUnavailable(f"PostgreSQL: {self._said(exc)}") from None
        (WRITTEN if inserted else DUPLICATES).inc()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        connection = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        # Each statement a span when tracing is on: the INSERT a child of the
        # consumer's `process` span, which the handler runs inside. Off, a no-op.
        PsycopgInstrumentor().instrument_connection(connection)
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


def _row(record: Record) -> tuple[object, ...]:
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
