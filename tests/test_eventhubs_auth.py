"""Clients authenticate as Azure Event Hubs wants: SASL PLAIN over verified TLS,
user ``$ConnectionString``, the namespace connection string as the password."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from localkafka import EVENTHUBS_USERNAME
from tests.conftest import Cluster


def _eventhubs_client(kafka: Cluster, **overrides: object) -> dict[str, object]:
    address, ca_file, connection_string = kafka.require_sasl_ssl()
    client: dict[str, object] = {
        "bootstrap_servers": address,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": EVENTHUBS_USERNAME,
        "sasl_plain_password": connection_string,
        "ssl_cafile": str(ca_file),
    }
    client.update(overrides)
    return client


def _refusal(client: dict[str, object], caplog: pytest.LogCaptureFixture) -> str:
    """Try to connect; return what kafka-python logged about why it could not."""
    caplog.set_level(logging.WARNING, logger="kafka")
    with pytest.raises(KafkaError):
        KafkaProducer(**client, bootstrap_timeout_ms=3000)
    return "\n".join(record.getMessage() for record in caplog.records)


def test_sasl_ssl_round_trip_with_verified_tls(
    kafka: Cluster, new_topic: Callable[..., str], roundtrip: Callable[..., list[bytes]]
) -> None:
    topic = new_topic(partitions=3)
    values = [f"secure-{i}".encode() for i in range(20)]

    received = roundtrip(topic, values, **_eventhubs_client(kafka))

    assert sorted(received) == sorted(values)


def test_wrong_key_is_refused(kafka: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    _, _, connection_string = kafka.require_sasl_ssl()
    wrong = connection_string.replace("SharedAccessKey=", "SharedAccessKey=not-the-key")
    assert wrong != connection_string

    log = _refusal(_eventhubs_client(kafka, sasl_plain_password=wrong), caplog)

    assert "SaslAuthenticationFailedError" in log


def test_untrusted_certificate_is_refused(kafka: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    # Without our CA file the client falls back to the system trust store,
    # which does not know localkafka's throwaway CA.
    log = _refusal(_eventhubs_client(kafka, ssl_cafile=None), caplog)

    assert "CERTIFICATE_VERIFY_FAILED" in log
