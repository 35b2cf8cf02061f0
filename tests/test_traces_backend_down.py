"""A trace backend that goes down costs the services nothing: Jaeger killed mid-run, the
records keep flowing, the spans are dropped and counted, the exporter's complaints come
once per interval with a count, and the stop flushes within its bound."""

from __future__ import annotations

import time
from collections.abc import Callable

from common.tracing import STOP_TIMEOUT_S
from harness.jaeger import Jaeger
from tests.conftest import Services

RATE = 400
#: Records each service must move after the kill: several of the exporter's retry rounds.
AFTER_KILL = 6_000


def test_jaeger_killed_mid_run_drops_spans_not_records(
    services: Services, jaeger: Jaeger, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=3)
    began = time.monotonic()
    env = jaeger.env(LOG_MESSAGE_EVERY="100")
    consumer = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=f"g-{topic}", **env)
    producer = services.start("producer", KAFKA_TOPIC=topic, PRODUCER_RATE=str(RATE), **env)
    for service in (producer, consumer):
        services.wait_until(
            lambda s=service: (
                s.events("service.started") and s.metric("tracing_spans_exported_total") > 0
            ),
            what=f"{service.module}'s first spans in Jaeger",
        )

    jaeger.kill()
    sent_at_kill = producer.metric("messaging_client_sent_messages_total")
    consumed_at_kill = consumer.metric("messaging_client_consumed_messages_total")
    services.wait_until(
        lambda: (
            consumer.metric("messaging_client_consumed_messages_total")
            >= consumed_at_kill + AFTER_KILL
            and producer.metric("messaging_client_sent_messages_total") >= sent_at_kill + AFTER_KILL
        ),
        timeout=120,
        what=f"{AFTER_KILL} more records sent and consumed with Jaeger gone",
    )
    sent_after = producer.metric("messaging_client_sent_messages_total") - sent_at_kill

    dropped = {
        service.module: service.metric("tracing_spans_dropped_total")
        for service in services.started
    }
    failed = {
        service.module: service.metric("tracing_spans_dropped_total", reason="export_failed")
        for service in services.started
    }
    assert producer.metric("producer_send_errors_total") == 0
    for service in (producer, consumer):
        started = time.monotonic()
        assert service.stop() == 0
        took = time.monotonic() - started
        (stopped,) = service.events("tracing.stopped")
        assert stopped["took_s"] <= STOP_TIMEOUT_S + 0.5
        print(f"{service.module}: stop {took:.2f} s, {stopped}")
        assert "Traceback" not in service.output()
        # Collapsed: one line per reason per 10 s at most, each with its count.
        lines = service.events("tracing.spans_dropped")
        assert lines, "the drops were said"
        assert all(line["spans"] > 0 for line in lines)
        intervals = (time.monotonic() - began) / lines[0]["interval_s"]
        for reason in {line["reason"] for line in lines}:
            assert len([line for line in lines if line["reason"] == reason]) <= intervals + 1
        exporter_lines = [
            e for e in service.events("log.repeated") if e["logger"].startswith("opentelemetry")
        ]
        print(f"{service.module}: {len(lines)} drop lines, {len(exporter_lines)} repeats")
        assert dropped[service.module] >= failed[service.module] > 0
    print(f"sent after kill {sent_after:.0f}; dropped {dropped}; export_failed {failed}")
