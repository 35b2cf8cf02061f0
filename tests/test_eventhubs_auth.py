"""Clients authenticate as Azure Event Hubs wants: SASL PLAIN over verified TLS,
user ``$ConnectionString``, the namespace connection string as the password."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from kafka import KafkaProducer
from kafka.errors import KafkaError

from harness import ServiceProcess, walkthrough_env
from localkafka import EVENTHUBS_USERNAME
from tests.conftest import Cluster, Services, sasl_ssl_env, seqs


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


def _refusal(client: dict[str, object], caplog: pytest.LogCaptureFixture, cause: str) -> str:
    """Try to connect until kafka-python logs *cause*; all it logged about why it could not."""
    caplog.set_level(logging.WARNING, logger="kafka")
    # Several clients, each trying for 8 s: on a loaded machine a whole
    # client's tries may see only the socket the broker closed, not the
    # refusal it sent first.
    for _ in range(3):
        with pytest.raises(KafkaError):
            KafkaProducer(**client, bootstrap_timeout_ms=8000)
        log = "\n".join(record.getMessage() for record in caplog.records)
        if cause in log:
            break
    return log


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

    log = _refusal(
        _eventhubs_client(kafka, sasl_plain_password=wrong), caplog, "SaslAuthenticationFailedError"
    )

    assert "SaslAuthenticationFailedError" in log


def test_untrusted_certificate_is_refused(kafka: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    # Without our CA file the client falls back to the system trust store,
    # which does not know localkafka's throwaway CA.
    log = _refusal(_eventhubs_client(kafka, ssl_cafile=None), caplog, "CERTIFICATE_VERIFY_FAILED")

    assert "CERTIFICATE_VERIFY_FAILED" in log


def _walkthrough_env(kafka: Cluster, topic: str, connection_string: str) -> dict[str, str]:
    address, ca_file, _ = kafka.require_sasl_ssl()
    return walkthrough_env(address, connection_string, ca_file, topic, f"g-{topic}")


def _assert_one_clear_error(service: ServiceProcess) -> None:
    """One error line, ours; kafka-python's retries of the refused connection stay out.

    Under load a whole bootstrap try may see only the closed socket, not the
    refusal: that try is a broker.unavailable warning, never another error.
    """
    errors = [line["event"] for line in service.lines if line["level"] == "error"]
    assert errors == ["service.failed"]
    assert not [line for line in service.lines if "logger" in line]
    assert {line["event"] for line in service.lines if line["level"] == "warning"} <= {
        "broker.unavailable"
    }


def _key(connection_string: str) -> str:
    return connection_string.split("SharedAccessKey=")[1].split(";", maxsplit=1)[0]


def test_services_with_only_the_walkthrough_variables(
    kafka: Cluster, services: Services, new_topic: Callable[..., str]
) -> None:
    _, _, connection_string = kafka.require_sasl_ssl()
    topic = new_topic(partitions=4)
    env = _walkthrough_env(kafka, topic, connection_string)
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="50", **env)

    services.wait_until(lambda: len(seqs(consumer, "message.received")) >= 20, what="20 received")
    _, metrics_text = consumer.get("/metrics")
    _, producer_metrics = producer.get("/metrics")
    assert producer.stop() == 0
    assert consumer.stop() == 0

    started = consumer.events("service.started")[0]
    assert started["security_protocol"] == "SASL_SSL"
    for text in (producer.output(), consumer.output(), metrics_text, producer_metrics):
        assert _key(connection_string) not in text
        assert "SharedAccessKey=" not in text


@pytest.mark.faults
def test_wrong_key_is_one_clear_error(
    kafka: Cluster, services: Services, new_topic: Callable[..., str]
) -> None:
    _, _, connection_string = kafka.require_sasl_ssl()
    wrong = connection_string.replace("SharedAccessKey=", "SharedAccessKey=Wr0ng")
    consumer = services.start(
        "consumer", clean_env=True, **_walkthrough_env(kafka, new_topic(1), wrong)
    )

    assert consumer.process.wait(60) == 1
    consumer.stop()
    (failure,) = consumer.events("service.failed")
    assert failure["reason"] == "authentication_failed"
    _assert_one_clear_error(consumer)
    assert "Traceback" not in consumer.output()
    for secret in (_key(connection_string), _key(wrong), wrong):
        assert secret not in consumer.output()


@pytest.mark.faults
def test_untrusted_certificate_is_one_clear_error(
    kafka: Cluster, services: Services, new_topic: Callable[..., str]
) -> None:
    # By address and user, not the connection string: with a connection string and no
    # CA file, an address that is not the namespace is refused at start, before any TLS
    # (tests/test_mistyped_settings.py).
    env = sasl_ssl_env(kafka, new_topic(1))
    del env["KAFKA_SSL_CAFILE"]
    producer = services.start("producer", clean_env=True, **env)

    assert producer.process.wait(60) == 1
    producer.stop()
    (failure,) = producer.events("service.failed")
    assert failure["reason"] == "tls_verification_failed"
    _assert_one_clear_error(producer)
    assert "KAFKA_SSL_CAFILE" in failure["error"]
    assert "Traceback" not in producer.output()


@pytest.mark.faults
def test_a_ca_that_does_not_match_is_one_clear_error(
    kafka: Cluster, services: Services, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    _, _, connection_string = kafka.require_sasl_ssl()
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    env = _walkthrough_env(kafka, new_topic(1), connection_string)
    consumer = services.start(
        "consumer", clean_env=True, **{**env, "KAFKA_SSL_CAFILE": str(other_ca)}
    )

    assert consumer.process.wait(60) == 1
    consumer.stop()
    (failure,) = consumer.events("service.failed")
    assert failure["reason"] == "tls_verification_failed"
    _assert_one_clear_error(consumer)
    assert "Traceback" not in consumer.output()


def test_turning_verification_off_works_and_warns(
    kafka: Cluster, services: Services, new_topic: Callable[..., str]
) -> None:
    _, _, connection_string = kafka.require_sasl_ssl()
    env = _walkthrough_env(kafka, new_topic(1), connection_string)
    del env["KAFKA_SSL_CAFILE"]
    producer = services.start("producer", clean_env=True, KAFKA_SSL_VERIFY="false", **env)

    services.wait_until(lambda: producer.events("message.sent"), what="a delivery")
    assert producer.stop() == 0
    assert producer.events("tls.verification_disabled")
