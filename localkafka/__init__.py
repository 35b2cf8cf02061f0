"""A real Apache Kafka broker on loopback, from its Maven Central jars, without Docker."""

from localkafka.broker import (
    EVENTHUBS_USERNAME,
    NAMESPACE,
    OAUTH_AUDIENCE,
    OAUTH_ISSUER,
    OAUTH_KEY_ID,
    Broker,
    create_topic,
    free_ports,
    start,
    status,
    stop,
)
from localkafka.errors import LocalKafkaError
from localkafka.jars import KAFKA_VERSION, ensure_jars

__all__ = [
    "EVENTHUBS_USERNAME",
    "KAFKA_VERSION",
    "NAMESPACE",
    "OAUTH_AUDIENCE",
    "OAUTH_ISSUER",
    "OAUTH_KEY_ID",
    "Broker",
    "LocalKafkaError",
    "create_topic",
    "ensure_jars",
    "free_ports",
    "start",
    "status",
    "stop",
]
