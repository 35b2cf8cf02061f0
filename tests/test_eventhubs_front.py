"""Against an endpoint that behaves as Event Hubs is documented to, the services still work.

Every connection of these tests passes localkafka's Event Hubs front (TLS,
then the real broker's SASL listener): it resets connections that open with
ApiVersions v4 (Event Hubs, 2025), refuses compressed batches as a Standard
namespace does, throttles over its quota with ``throttle_time_ms`` and
PolicyViolation, and closes idle connections as Azure's load balancer does.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka.record.memory_records import MemoryRecordsBuilder

from localkafka import wire
from tests import clients
from tests.conftest import (
    Cluster,
    EventHubsFront,
    Services,
    assert_every_send_accounted,
    eventhubs_env,
    sasl_ssl_env,
    seqs,
    topic_seqs,
)

pytestmark = pytest.mark.localkafka


def _produce_request(version: int, compression: int) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=compression, batch_size=1 << 16)
    for n in range(3):
        builder.append(n, None, b"x" * 200, [])
    builder.close()
    topic = ProduceRequest.TopicProduceData
    key = {"topic_id": uuid.uuid4()} if version >= 13 else {"name": "hub"}
    request = ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=60_000,
        topic_data=[
            topic(
                **key,
                partition_data=[
                    topic.PartitionProduceData(index=i, records=bytes(builder.buffer()))
                    for i in (0, 7)
                ],
            )
        ],
    )
    request.API_VERSION = version
    request.with_header(correlation_id=42)
    return bytes(request.encode(header=True))


@pytest.mark.parametrize("version", [3, 8, 9, 12, 13])
def test_the_front_reads_batches_and_answers_refusals_in_the_clients_version(
    version: int,
) -> None:
    """No broker: the front's reading and writing of Kafka's wire format, every version
    a client may use (kafka-python's classes, from Kafka's own schemas)."""
    plain = wire.produce(_produce_request(version, compression=0), version)
    packed = wire.produce(_produce_request(version, compression=1), version)
    assert (plain.batches.records, plain.batches.compressed) == (6, False)
    assert (packed.batches.records, packed.batches.compressed) == (6, True)
    assert plain.timeout_ms == 60_000

    answer = wire.produce_error(packed, version, 42, wire.UNSUPPORTED_FOR_MESSAGE_FORMAT)
    decoded = ProduceResponse.decode(answer[4:], version=version, header=True)
    assert decoded.header.correlation_id == 42
    partitions = decoded.responses[0].partition_responses
    assert [(p.index, p.error_code) for p in partitions] == [(0, 43), (7, 43)]

    throttled = wire.with_throttle(answer[4:], wire.PRODUCE, version, 1234)
    assert (
        ProduceResponse.decode(throttled[4:], version=version, header=True).throttle_time_ms == 1234
    )


def _metric(service_metrics: str, name: str) -> float:
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", service_metrics, re.MULTILINE)
    assert found, f"{name} is not exported"
    return float(found.group(1))


@pytest.mark.parametrize("drop_from", [None, 4, 3], ids=["v4-kept", "v4-dropped", "v3-dropped"])
def test_the_services_reach_an_endpoint_that_drops_new_api_versions(
    services: Services,
    new_topic: Callable[..., str],
    eventhubs_front: EventHubsFront,
    drop_from: int | None,
) -> None:
    eventhubs_front.configure(drop_api_versions_from=drop_from)
    topic = new_topic()
    env = eventhubs_env(services.kafka, topic, f"g-{topic}")
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="50", **env)

    services.wait_until(
        lambda: (
            len(set(seqs(producer, "message.sent")) & set(seqs(consumer, "message.received"))) >= 30
        ),
        timeout=60,
        what="30 messages through the front",
    )
    assert producer.stop() == 0
    assert consumer.stop() == 0

    dropped = eventhubs_front.events("front.api_versions_dropped")
    print(f"drop from {drop_from}: {len(dropped)} connections reset on ApiVersions")
    for service in (producer, consumer):
        steps = [line["next_version"] for line in service.events("connection.api_versions_lowered")]
        # One line per step down, whichever connection took it.
        assert steps == ([] if drop_from is None else list(range(3, drop_from - 2, -1)))
        assert "Traceback" not in service.output()
    assert bool(dropped) == (drop_from is not None)
    assert all(int(str(line["version"])) >= (drop_from or 0) for line in dropped)


def test_a_standard_namespace_refuses_compression_with_one_clear_error(
    services: Services, new_topic: Callable[..., str], eventhubs_front: EventHubsFront
) -> None:
    eventhubs_front.configure(tier="standard")
    topic = new_topic()
    producer = services.start(
        "producer",
        clean_env=True,
        **eventhubs_env(services.kafka, topic),
        # The user says Premium; the namespace is Standard.
        KAFKA_COMPRESSION_TYPE="gzip",
        EVENTHUBS_TIER="premium",
        PRODUCER_MESSAGE_SIZE="1000",
        PRODUCER_RATE="50",
    )

    assert producer.process.wait(60) == 1
    producer.stop()
    (failed,) = producer.events("service.failed")
    assert failed["reason"] == "compression_refused"
    assert "KAFKA_COMPRESSION_TYPE=none" in failed["error"]
    # Each message tried is reported failed; none was written.
    tried = seqs(producer, "message.failed")
    assert tried == list(range(1, len(tried) + 1))
    assert not seqs(producer, "message.sent")
    assert topic_seqs(services.kafka.bootstrap_servers, topic) == []
    assert eventhubs_front.events("front.compressed_refused")
    assert "Traceback" not in producer.output()


def _refused_to(command: list[str]) -> str:
    """Run a foreign client expected to fail; what it said."""
    result = subprocess.run(
        command, input=b"x" * 2000 + b"\n", capture_output=True, timeout=120, check=False
    )
    assert result.returncode != 0, "the compressed batch was taken"
    return (result.stdout + result.stderr).decode(errors="replace")


@pytest.mark.usefixtures("kcat_installed")
def test_clients_nobody_here_wrote_get_the_refusal_event_hubs_gives(
    new_topic: Callable[..., str], eventhubs_front: EventHubsFront, kafka: Cluster, tmp_path: Path
) -> None:
    """librdkafka (kcat) and Kafka's Java producer, gzip on a Standard namespace: each is
    told what Event Hubs tells it, in the Produce version it speaks (Java 4.1: v13)."""
    # Kafka's Java client neither falls back from ApiVersions v4 nor has to here.
    eventhubs_front.configure(tier="standard", drop_api_versions_from=None)
    topic = new_topic()
    address, ca_file, connection_string = kafka.require_sasl_ssl()

    said = _refused_to(clients.kcat_command(
        address, "-P", "-t", topic, "-z", "gzip",
        "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN",
        "-X", "sasl.username=$ConnectionString", "-X", f"sasl.password={connection_string}",
        "-X", f"ssl.ca.location={ca_file}",
    ))  # fmt: skip
    assert "Message format on broker does not support request" in said

    settings = tmp_path / "producer.properties"
    settings.write_text(
        "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="$ConnectionString" password="{connection_string}";\n'
        f"ssl.truststore.type=PEM\nssl.truststore.location={ca_file}\n"
        "delivery.timeout.ms=10000\nrequest.timeout.ms=5000\n"
    )
    said = _refused_to(clients.java_command(
        clients.CONSOLE_PRODUCER, "--bootstrap-server", address, "--topic", topic,
        "--producer.config", str(settings), "--compression-codec", "gzip", "--sync",
    ))  # fmt: skip
    assert "The message format version on the broker does not support the request" in said

    assert len(eventhubs_front.events("front.compressed_refused")) >= 2
    assert topic_seqs(kafka.bootstrap_servers, topic) == []


def test_a_premium_namespace_takes_gzip(
    services: Services, new_topic: Callable[..., str], eventhubs_front: EventHubsFront
) -> None:
    eventhubs_front.configure(tier="premium")
    topic = new_topic()
    env = eventhubs_env(services.kafka, topic, f"g-{topic}")
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start(
        "producer",
        clean_env=True,
        **env,
        KAFKA_COMPRESSION_TYPE="gzip",
        EVENTHUBS_TIER="premium",
        PRODUCER_MESSAGE_SIZE="1000",
        PRODUCER_RATE="50",
    )

    services.wait_until(
        lambda: len(seqs(consumer, "message.received")) >= 30, timeout=60, what="30 received"
    )
    assert producer.stop() == 0
    assert consumer.stop() == 0
    assert set(seqs(producer, "message.sent")) <= set(seqs(consumer, "message.received"))
    assert not eventhubs_front.events("front.compressed_refused")


def test_a_throttled_producer_loses_nothing_and_reports_what_it_could_not_deliver(
    services: Services, new_topic: Callable[..., str], eventhubs_front: EventHubsFront
) -> None:
    # 40 records a second, against 150 offered: delays grow past the request
    # timeout, and the front answers PolicyViolation as Event Hubs does. By
    # address, not connection string: Apache Kafka's rules let the request
    # timeout be 3 s, so that happens within the test, not after 60 s.
    eventhubs_front.configure(ingress_records_per_second=40)
    topic = new_topic()
    producer = services.start(
        "producer",
        clean_env=True,
        **sasl_ssl_env(
            services.kafka,
            topic,
            PRODUCER_RATE="150",
            KAFKA_REQUEST_TIMEOUT_MS="3000",
            KAFKA_DELIVERY_TIMEOUT_MS="10000",
        ),
    )

    services.wait_until(
        lambda: len(seqs(producer, "message.failed")) >= 20 and producer.events("broker.throttled"),
        timeout=90,
        what="sends refused under throttling, and the throttling reported",
    )
    metrics = producer.get("/metrics")[1]
    assert producer.stop() == 0

    sent, failed = assert_every_send_accounted(producer, services.kafka.bootstrap_servers, topic)
    errors = {line["error"] for line in producer.events("message.failed")}
    print(
        f"throttled producer: {len(sent)} sent, {len(failed)} failed, "
        f"throttle max {_metric(metrics, 'kafka_client_throttle_time_max_seconds')} s, "
        f"front: {len(eventhubs_front.events('front.produce_throttled'))} delayed, "
        f"{len(eventhubs_front.events('front.produce_refused'))} refused"
    )
    assert sent, "nothing got through"
    assert producer.events("producer.client_failed"), "the failed client was not replaced"
    assert max(sent) > min(failed), "nothing was sent after the first refusal"
    assert any("PolicyViolation" in error for error in errors), errors
    assert re.search(
        r'^producer_send_errors_total\{[^}]*error_type="PolicyViolationError"[^}]*\} [1-9]',
        metrics,
        re.MULTILINE,
    )
    assert _metric(metrics, "kafka_client_throttle_time_max_seconds") > 0
    # One line a while, not kafka-python's warning per throttled answer.
    assert len(producer.events("broker.throttled")) <= 3
    assert "throttled by broker" not in producer.output()
    assert "Traceback" not in producer.output()


def test_a_throttled_consumer_reads_everything_and_shows_it(
    services: Services,
    new_topic: Callable[..., str],
    prefill: Callable[..., list[int]],
    eventhubs_front: EventHubsFront,
) -> None:
    eventhubs_front.configure(egress_bytes_per_second=40_000)
    topic = new_topic()
    expected = prefill(topic, 600, size=300)
    consumer = services.start(
        "consumer", clean_env=True, **eventhubs_env(services.kafka, topic, f"g-{topic}")
    )

    services.wait_until(
        lambda: (
            set(seqs(consumer, "message.received")) >= set(expected)
            and consumer.events("broker.throttled")
        ),
        timeout=60,
        what="all 600 read, and the throttling reported",
    )
    metrics = consumer.get("/metrics")[1]
    assert consumer.stop() == 0

    delayed = eventhubs_front.events("front.fetch_throttled")
    print(f"throttled consumer: {len(delayed)} fetches delayed")
    assert delayed
    assert _metric(metrics, "kafka_client_throttle_time_max_seconds") > 0
    assert sorted(seqs(consumer, "message.received")) == expected
    assert "throttled by broker" not in consumer.output()


def test_connections_closed_when_idle_are_opened_again(
    services: Services, new_topic: Callable[..., str], eventhubs_front: EventHubsFront
) -> None:
    # Azure closes a connection idle for about 240 s; here 2 s, against a
    # message every 3 s.
    eventhubs_front.configure(idle_close_seconds=2)
    topic = new_topic()
    producer = services.start(
        "producer", clean_env=True, PRODUCER_RATE="0.33", **eventhubs_env(services.kafka, topic)
    )

    services.wait_until(lambda: len(seqs(producer, "message.sent")) >= 5, timeout=60, what="5 sent")
    assert producer.stop() == 0

    closed = eventhubs_front.events("front.idle_closed")
    print(f"idle close: {len(closed)} connections closed by the front")
    assert len(closed) >= 2
    assert not seqs(producer, "message.failed")
    assert set(seqs(producer, "message.sent")) <= set(
        topic_seqs(services.kafka.bootstrap_servers, topic)
    )
