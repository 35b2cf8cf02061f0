"""The handler runs inside the record's span: the PostgreSQL sink's INSERT, traced by
psycopg's OpenTelemetry instrumentation, is a child of ``process`` in Jaeger, in the
trace kcat's record began."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from harness.jaeger import Jaeger
from harness.postgres import PostgresServer
from tests.clients import kcat
from tests.conftest import Services

pytestmark = pytest.mark.usefixtures("kcat_installed")


def test_the_sinks_insert_is_a_child_of_the_process_span(
    services: Services, jaeger: Jaeger, postgres: PostgresServer, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    trace_id, app_span = secrets.token_hex(16), secrets.token_hex(8)
    kcat(
        services.kafka.bootstrap_servers, "-P", "-t", topic, "-k", "order-1",
        "-H", f"traceparent=00-{trace_id}-{app_span}-01", stdin=b'{"total": 12}\n',
    )  # fmt: skip
    consumer = services.start(
        "consumer",
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=f"sink-{topic}",
        CONSUMER_HANDLER="examples.postgres_sink:handler",
        SINK_DATABASE_URL=postgres.conninfo,
        **jaeger.env(),
    )
    spans = services.wait_until(
        lambda: len(jaeger.trace(trace_id)) >= 2 and jaeger.trace(trace_id), what="two spans"
    )
    assert consumer.stop() == 0

    process = next(s for s in spans if s.name == f"process {topic}")
    (insert,) = [s for s in spans if s is not process]
    assert process.parent == (trace_id, app_span)
    assert insert.parent == (trace_id, process.span_id)
    assert (insert.service, insert.kind) == ("consumer", "client")
    assert insert.tags["db.system"] == "postgresql"
    assert str(insert.tags["db.statement"]).lstrip().startswith("INSERT INTO kafka_records")
    assert postgres.query(f"SELECT count(*) FROM kafka_records WHERE topic = '{topic}'") == [(1,)]
