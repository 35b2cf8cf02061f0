"""The PostgreSQL sink as its tests run it: records written by kcat, the consumer started
with the sink's handler, waits on its counters, and a lock that holds its writes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import psycopg

from harness.postgres import PostgresServer
from tests.clients import kcat
from tests.conftest import Services


def fill(services: Services, topic: str, records: Iterable[tuple[str, str | None]]) -> None:
    """Write *records* (key, value) with kcat, in order; a value of None is a tombstone."""
    lines = "".join(f"{key}:{'' if value is None else value}\n" for key, value in records)
    # -Z: an empty value is sent as no value at all, a tombstone.
    kcat(services.kafka.bootstrap_servers, "-P", "-Z", "-t", topic, "-K", ":", stdin=lines.encode())


def start_sink(
    services: Services, postgres: PostgresServer, topic: str, entry: str, **settings: str
) -> object:
    """The consumer running ``examples.postgres_sink:<entry>``, in group ``sink-<topic>``."""
    return services.start(
        "consumer",
        **{
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": f"sink-{topic}",
            "KAFKA_AUTO_OFFSET_RESET": "earliest",
            "CONSUMER_HANDLER": f"examples.postgres_sink:{entry}",
            "SINK_DATABASE_URL": postgres.conninfo,
            "LOG_MESSAGE_EVERY": "0",
        }
        | settings,
    )


def wait_for_count(
    services: Services, consumer: object, name: str, at_least: int, what: str
) -> None:
    """Wait until *consumer* has started and its counter *name* is *at_least*."""
    services.wait_until(
        lambda: (
            consumer.events("service.started")  # type: ignore[attr-defined]
            and consumer.metric(name) >= at_least  # type: ignore[attr-defined]
        ),
        timeout=60,
        what=what,
    )


@contextlib.contextmanager
def table_locked(postgres: PostgresServer, table: str) -> Iterator[Callable[[], int]]:
    """*table* locked against writes by a transaction of the test's own until the block ends,
    so that the sink's writes wait inside their transactions: a kill then lands mid-batch,
    on a machine of any speed. Yields a count of the writes waiting."""

    def waiting() -> int:
        ((count,),) = postgres.query(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE wait_event_type = 'Lock' AND query LIKE '%INTO {table} %'"
        )
        assert isinstance(count, int)
        return count

    with psycopg.connect(postgres.conninfo) as holder:
        holder.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        yield waiting
