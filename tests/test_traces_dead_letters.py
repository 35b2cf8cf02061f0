"""A record refused by the handler, on the real broker: its process span in Jaeger fails
with the exception's type and message, the dead-letter send is its child linked to the
record's own trace, the dead letter keeps the record's traceparent, and replay puts it
back with that traceparent still."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from harness.jaeger import Jaeger
from tests.clients import kcat, read_all
from tests.conftest import Cluster, Services

pytestmark = pytest.mark.usefixtures("kcat_installed")


@pytest.fixture
def two_topics(kafka: Cluster) -> Iterator[tuple[str, str]]:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    names = (f"test-{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:12]}")
    admin.create_topics([NewTopic(name, 1, 1) for name in names])
    yield names
    admin.delete_topics(list(names))
    admin.close()


def test_a_dead_lettered_record_keeps_its_trace_through_dead_letter_and_replay(
    services: Services, jaeger: Jaeger, two_topics: tuple[str, str]
) -> None:

    topic, dead = two_topics
    bootstrap = services.kafka.bootstrap_servers
    trace_id, app_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{app_span}-01"
    kcat(bootstrap, "-P", "-t", topic, "-K:", "-H", f"traceparent={traceparent}",
         stdin=b"k1:poison pill\n")  # fmt: skip
    settings = {
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"g-{topic}",
        "CONSUMER_DEAD_LETTER_TOPIC": dead,
        **jaeger.env(),
    }
    consumer = services.start(
        "consumer", CONSUMER_HANDLER="tests.handlers:refuse_poison", **settings
    )
    services.wait_until(lambda: consumer.events("record.dead_lettered"), what="the dead letter")
    spans = services.wait_until(
        lambda: len(jaeger.trace(trace_id)) == 2 and jaeger.trace(trace_id), what="two spans"
    )
    assert consumer.stop() == 0

    process = next(s for s in spans if s.kind == "consumer")
    send = next(s for s in spans if s.kind == "producer")
    assert process.parent == (trace_id, app_span)
    assert process.tags["otel.status_code"] == "ERROR"
    assert process.tags["error.type"] == "consumer.handler.RecordRefused"
    assert "poison" in str(process.tags["otel.status_description"])
    assert [e.get("event") for e in process.events] == ["exception", "dead_lettered"]
    assert process.events[0]["exception.type"] == "consumer.handler.RecordRefused"
    assert (send.name, send.parent) == (f"send {dead}", (trace_id, process.span_id))
    assert send.links == ((trace_id, app_span),)
    # The dead-lettered line was written inside the record's span.
    (line,) = consumer.events("record.dead_lettered")
    assert (line["trace_id"], line["span_id"]) == (trace_id, process.span_id)

    (letter,) = read_all(bootstrap, dead)
    assert (
        dict(zip(letter["headers"][::2], letter["headers"][1::2], strict=True))["traceparent"]
        == traceparent
    )

    replay = services.start_command(
        "replay",
        [sys.executable, "-m", "consumer", "replay"],
        env={**services.base_env, **settings},
    )
    assert replay.process.wait(timeout=60) == 0
    back = [r for r in read_all(bootstrap, topic) if r["offset"] == 1]
    assert back[0]["headers"][:2] == ["traceparent", traceparent]
