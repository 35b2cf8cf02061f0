"""A topic that does not exist yet: both services say so, keep running,
and start when it appears."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

import localkafka
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
