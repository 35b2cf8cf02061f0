"""A topic that does not exist yet: both services say so, keep running,
and start when it appears."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

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
