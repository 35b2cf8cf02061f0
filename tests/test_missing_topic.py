"""A topic that does not exist yet: both services say so, keep running,
and start when it appears."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError
from kafka.structs import MemberState
from structlog.testing import capture_logs

import localkafka
from common.config import ConsumerSettings, load, resolve
from common.health import Health
from common.shutdown import Shutdown
from consumer.service import ConsumerService
from tests.conftest import Services, eventhubs_env, seqs

pytestmark = pytest.mark.faults


def test_services_wait_for_a_missing_topic(services: Services) -> None:
    topic = f"later-{uuid.uuid4().hex[:8]}"
    env = eventhubs_env(services.kafka, topic, f"g-{topic}")
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="50", **env)

    services.wait_until(
        lambda: producer.events("topic.unavailable") and consumer.events("topic.unavailable"),
        what="both saying the topic is missing",
    )
    assert producer.get("/readyz")[0] == 503
    assert consumer.get("/readyz")[0] == 503
    assert producer.process.poll() is None
    assert consumer.process.poll() is None

    admin = KafkaAdminClient(bootstrap_servers=services.kafka.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
        services.wait_until(
            lambda: len(seqs(consumer, "message.received")) >= 20,
            timeout=90,
            what="messages flowing once the topic exists",
        )
        assert producer.get("/readyz")[0] == 200
        assert consumer.get("/readyz")[0] == 200
        assert producer.stop() == 0
        assert consumer.stop() == 0
    finally:
        admin.delete_topics([topic])
        admin.close()
    for service in (producer, consumer):
        assert "Traceback" not in service.output()
        (unavailable, *_) = service.events("topic.unavailable")
        assert unavailable["topic"] == topic


@pytest.mark.localkafka
def test_a_misspelt_topic_is_never_created(services: Services, tmp_path: Path) -> None:
    # A broker that creates topics on request, as Event Hubs does for an identity
    # with Manage rights (the walkthrough's RootManageSharedAccessKey).
    try:
        broker = localkafka.start(tmp_path, auto_create_topics=True, bind_to_parent=True)
    except localkafka.LocalKafkaError as exc:
        pytest.fail(f"the Kafka broker could not start: {exc}", pytrace=False)
    try:
        misspelt = "testhbu"
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.plaintext, "KAFKA_TOPIC": misspelt}
        consumer = services.start("consumer", KAFKA_GROUP_ID="g", **env)
        producer = services.start("producer", **env)
        services.wait_until(
            lambda: (
                len(producer.events("topic.unavailable")) >= 2
                and len(consumer.events("topic.unavailable")) >= 2
            ),
            what="both asking twice for the missing topic",
        )
        assert producer.stop() == 0
        assert consumer.stop() == 0
        admin = KafkaAdminClient(bootstrap_servers=broker.plaintext)
        try:
            assert misspelt not in admin.list_topics()
        finally:
            admin.close()
    finally:
        localkafka.stop(tmp_path)


class _MetadataFails:
    """A consumer client whose metadata requests fail, as when a broker drops them."""

    def __init__(self, shutdown: Shutdown) -> None:
        self.shutdown = shutdown
        self.polls = 0
        self.closed = False

    def subscribe(self, topics: object, *, listener: object) -> None: ...

    def topics(self) -> set[str]:
        raise KafkaConnectionError("socket disconnected")

    def partitions_for_topic(self, topic: str) -> set[int]:
        raise KafkaConnectionError("socket disconnected")

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[object, object]:
        self.polls += 1
        if self.polls == 3:
            self.shutdown.event.set()
        return {}

    def assignment(self) -> set[object]:
        return set()

    def group_metadata(self) -> SimpleNamespace:
        return SimpleNamespace(state=MemberState.UNJOINED)

    def metrics(self) -> dict[str, dict[str, float]]:
        return {}

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


def test_a_failed_metadata_request_is_a_missing_topic_not_a_crash(
    environ: Callable[..., None],
) -> None:
    # Seen once in CI: a consumer of a misspelt topic left its loop 0.6 s after
    # start, against a broker still starting, with no line saying why; a metadata
    # request failing out of the topic check does exactly that.
    environ(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", KAFKA_TOPIC="t", KAFKA_GROUP_ID="g")
    shutdown = Shutdown()
    client = _MetadataFails(shutdown)
    service = ConsumerService(resolve(load(ConsumerSettings)), client, Health(), shutdown)

    with capture_logs() as logs:
        service.run()

    assert client.polls == 3
    assert client.closed
    (unavailable,) = [line for line in logs if line["event"] == "topic.unavailable"]
    assert unavailable["error"] == "KafkaConnectionError"
