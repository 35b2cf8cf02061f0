"""`docker compose --profile tracing up` with the endpoint .env.example names: Jaeger v2
(a stand-in built from the same Go module as the tests' Jaeger) shows each record of the
producer as one trace, its send span the parent of the consumer's process span, on the
UI's port 16686 of the host's loopback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.jaeger import JaegerApi, Span
from tests.compose.project import Project, wait_until

pytestmark = pytest.mark.compose

UI_PORT = 16686


def _joined(jaeger: JaegerApi) -> list[tuple[Span, Span]]:
    """(send, process) pairs of one trace each, the send the process span's parent."""
    pairs = []
    for process in jaeger.spans("consumer", "process testhub", limit=50):
        if process.kind != "consumer" or process.parent is None:
            continue
        for span in jaeger.trace(process.trace_id):
            if (span.trace_id, span.span_id) == process.parent and span.kind == "producer":
                pairs.append((span, process))
    return pairs


def test_the_tracing_profile_shows_each_record_as_one_trace(
    project: Callable[..., Project],
) -> None:
    compose = project("OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318\n")
    compose.compose(
        "--profile", "tracing", "up", "--detach", "--wait",
        "kafka", "topic", "producer", "consumer", "jaeger",
    )  # fmt: skip
    (jaeger_container,) = compose.containers("jaeger")
    bindings = compose.inspect(jaeger_container)["HostConfig"]["PortBindings"]
    assert bindings == {f"{UI_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(UI_PORT)}]}

    jaeger = JaegerApi(UI_PORT)
    wait_until(
        lambda: {"producer", "consumer"} <= set(jaeger.services()),
        120,
        "both services' spans in Jaeger",
    )
    pairs = wait_until(lambda: _joined(jaeger), 60, "a trace from producer to consumer")
    send, process = pairs[0]
    assert (send.service, send.name) == ("producer", "send testhub")
    assert (process.service, process.name) == ("consumer", "process testhub")
    assert process.tags["messaging.consumer.group.name"] == "testgroup"

    (consumer,) = compose.containers("consumer")
    started = compose.events(consumer, "tracing.started")
    assert started[0]["endpoint"] == "http://jaeger:4318"
    received = compose.events(consumer, "message.received")
    assert all(len(line["trace_id"]) == 32 for line in received)
    print(f"tracing profile: {len(pairs)} joined traces of the last 50 process spans")
