"""Settings reach kafka-python through one resolved plan: the exact arguments, no broker needed."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

from common.config import (
    ConfigError,
    ConsumerPlan,
    ConsumerSettings,
    EventHubsEntra,
    EventHubsKey,
    Plaintext,
    ProducerPlan,
    ProducerSettings,
    Sasl,
    Tls,
    load,
    resolve,
)
from common.entra import EntraTokens

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY="
CONNECTION_STRING = (
    "Endpoint=sb://contoso.servicebus.windows.net/;"
    f"SharedAccessKeyName=send;SharedAccessKey={KEY};EntityPath=orders"
)
HOST = socket.gethostname()

#: What every producer of ours is given on plain Apache Kafka.
PRODUCER = {
    "bootstrap_servers": ["kafka:9092"],
    "client_id": f"producer-{HOST}",
    "security_protocol": "PLAINTEXT",
    "bootstrap_timeout_ms": 5_000,
    "reconnect_backoff_max_ms": 1_000,
    "request_timeout_ms": 30_000,
    "allow_auto_create_topics": False,
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": None,
    "linger_ms": 5,
    "delivery_timeout_ms": 120_000,
    "max_block_ms": 3_000,
    "max_request_size": 1_048_576,
}
#: What every consumer of ours is given on plain Apache Kafka.
CONSUMER = {
    "bootstrap_servers": ["kafka:9092"],
    "client_id": f"consumer-{HOST}",
    "security_protocol": "PLAINTEXT",
    "bootstrap_timeout_ms": 5_000,
    "reconnect_backoff_max_ms": 1_000,
    "request_timeout_ms": 30_000,
    "allow_auto_create_topics": False,
    "group_id": "g",
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "partition_assignment_strategy": (StickyPartitionAssignor, RangePartitionAssignor),
    "session_timeout_ms": 30_000,
    "heartbeat_interval_ms": 500,
    "max_poll_records": 500,
    "max_poll_interval_ms": 300_000,
    "fetch_max_bytes": 1_048_576,
    "isolation_level": "read_uncommitted",
}
#: Microsoft's settings for Event Hubs, on top of those.
EVENTHUBS = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "PLAIN",
    "sasl_plain_username": "$ConnectionString",
    "sasl_plain_password": CONNECTION_STRING,
    "bootstrap_servers": ["contoso.servicebus.windows.net:9093"],
    "request_timeout_ms": 60_000,
    "metadata_max_age_ms": 180_000,
    "connections_max_idle_ms": 180_000,
}

Environ = Callable[..., None]


def producer(environ: Environ, **variables: str) -> ProducerPlan:
    environ(**variables)
    return resolve(load(ProducerSettings))


def consumer(environ: Environ, **variables: str) -> ConsumerPlan:
    environ(**variables)
    return resolve(load(ConsumerSettings))


def without_tls_context(args: object) -> dict[str, object]:
    plain = dict(args)  # type: ignore[call-overload]
    plain.pop("ssl_context", None)
    return plain


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_plaintext_producer(environ: Environ) -> None:
    plan = producer(environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9092", KAFKA_TOPIC="t")

    assert plan.kafka == PRODUCER
    assert plan.connection.security == Plaintext()
    assert not plan.connection.eventhubs
    assert plan.secrets == ()


def test_plaintext_consumer(environ: Environ) -> None:
    plan = consumer(
        environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9092", KAFKA_TOPIC="t", KAFKA_GROUP_ID="g"
    )

    assert plan.kafka == CONSUMER
    assert (plan.topic, plan.group_id) == ("t", "g")


def test_every_setting_reaches_its_argument(environ: Environ) -> None:
    plan = consumer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS="a:9092,b:9093",
        KAFKA_TOPIC="t",
        KAFKA_GROUP_ID="g",
        KAFKA_CLIENT_ID="me",
        KAFKA_AUTO_OFFSET_RESET="latest",
        KAFKA_PARTITION_ASSIGNMENT_STRATEGY="range",
        KAFKA_SESSION_TIMEOUT_MS="10000",
        KAFKA_HEARTBEAT_INTERVAL_MS="1000",
        KAFKA_MAX_POLL_RECORDS="50",
        KAFKA_MAX_POLL_INTERVAL_MS="60000",
    )

    assert plan.kafka == {
        **CONSUMER,
        "bootstrap_servers": ["a:9092", "b:9093"],
        "client_id": "me",
        "auto_offset_reset": "latest",
        "partition_assignment_strategy": (RangePartitionAssignor,),
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": 50,
        "max_poll_interval_ms": 60_000,
        "fetch_max_bytes": 1_048_576,
    }
    plan = producer(
        environ,
        KAFKA_COMPRESSION_TYPE="gzip",
        KAFKA_LINGER_MS="20",
        KAFKA_DELIVERY_TIMEOUT_MS="90000",
        KAFKA_REQUEST_TIMEOUT_MS="40000",
    )
    assert without_tls_context(plan.kafka) | {"bootstrap_servers": ["kafka:9092"]} == {
        **PRODUCER,
        "client_id": "me",
        "compression_type": "gzip",
        "linger_ms": 20,
        "delivery_timeout_ms": 90_000,
        "request_timeout_ms": 40_000,
    }


def test_tls_verifies_the_broker_against_the_ca_file(environ: Environ, ca_file: Path) -> None:
    plan = producer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS="kafka:9093",
        KAFKA_TOPIC="t",
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(ca_file),
    )

    assert without_tls_context(plan.kafka) == {
        **PRODUCER,
        "bootstrap_servers": ["kafka:9093"],
        "security_protocol": "SSL",
    }
    context = plan.kafka["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1
    assert isinstance(plan.connection.security, Tls)


def test_tls_without_verification(environ: Environ) -> None:
    plan = producer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS="kafka:9093",
        KAFKA_TOPIC="t",
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_VERIFY="false",
    )

    context = plan.kafka["ssl_context"]
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "PLAIN")],
)
def test_sasl(environ: Environ, protocol: str, mechanism: str) -> None:
    plan = producer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS="kafka:9094",
        KAFKA_TOPIC="t",
        KAFKA_SECURITY_PROTOCOL=protocol,
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD="s3cret-password",
    )

    assert without_tls_context(plan.kafka) == {
        **PRODUCER,
        "bootstrap_servers": ["kafka:9094"],
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "alice",
        "sasl_plain_password": "s3cret-password",
    }
    assert ("ssl_context" in plan.kafka) == (protocol == "SASL_SSL")
    assert isinstance(plan.connection.security, Sasl)
    assert plan.secrets == ("s3cret-password",)
    assert "s3cret-password" not in repr(plan)


def test_a_connection_string_alone_is_eventhubs_with_microsofts_settings(
    environ: Environ,
) -> None:
    environ(EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING, EVENTHUBS_CONSUMER_GROUPID="g")
    producer_plan = resolve(load(ProducerSettings))
    consumer_plan = resolve(load(ConsumerSettings))

    assert without_tls_context(producer_plan.kafka) == {
        **PRODUCER,
        **EVENTHUBS,
        "max_request_size": 1_000_000,
    }
    assert without_tls_context(consumer_plan.kafka) == {
        **CONSUMER,
        **EVENTHUBS,
        # Microsoft: "Don't change this value".
        "heartbeat_interval_ms": 3_000,
    }
    assert producer_plan.kafka["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert isinstance(producer_plan.connection.security, EventHubsKey)
    assert producer_plan.topic == "orders"
    assert producer_plan.secrets == (CONNECTION_STRING, KEY)
    assert KEY not in repr(producer_plan)
    assert KEY not in repr(consumer_plan)


@pytest.mark.parametrize(
    "host",
    [
        "contoso.servicebus.windows.net",
        "contoso.servicebus.chinacloudapi.cn",
        "CONTOSO.servicebus.usgovcloudapi.net",
    ],
)
def test_eventhubs_host_names_get_microsofts_settings(environ: Environ, host: str) -> None:
    plan = producer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS=f"{host}:9093",
        KAFKA_TOPIC="t",
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_USERNAME="$ConnectionString",
        KAFKA_SASL_PASSWORD=CONNECTION_STRING,
    )

    assert plan.connection.eventhubs
    assert plan.kafka["request_timeout_ms"] == 60_000
    assert plan.kafka["metadata_max_age_ms"] == 180_000
    assert plan.kafka["max_request_size"] == 1_000_000


def test_a_request_timeout_set_by_the_user_wins_over_eventhubs_advice(environ: Environ) -> None:
    plan = producer(
        environ, EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING, KAFKA_REQUEST_TIMEOUT_MS="90000"
    )

    assert plan.kafka["request_timeout_ms"] == 90_000


@pytest.mark.parametrize("tier", ["premium", "dedicated"])
def test_gzip_on_eventhubs_when_the_namespace_takes_it(environ: Environ, tier: str) -> None:
    plan = producer(
        environ,
        EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
        KAFKA_COMPRESSION_TYPE="gzip",
        EVENTHUBS_TIER=tier,
    )

    assert plan.kafka["compression_type"] == "gzip"


def test_a_heartbeat_set_by_the_user_wins_over_eventhubs_advice(environ: Environ) -> None:
    plan = consumer(
        environ,
        EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
        EVENTHUBS_CONSUMER_GROUPID="g",
        KAFKA_HEARTBEAT_INTERVAL_MS="1000",
    )

    assert plan.kafka["heartbeat_interval_ms"] == 1_000


def test_eventhubs_rules_stay_with_eventhubs(environ: Environ) -> None:
    """Apache Kafka takes what Event Hubs refuses: a short poll interval, a short timeout."""
    plan = consumer(
        environ,
        KAFKA_BOOTSTRAP_SERVERS="kafka:9092",
        KAFKA_TOPIC="t",
        KAFKA_GROUP_ID="g",
        KAFKA_SESSION_TIMEOUT_MS="6000",
        KAFKA_MAX_POLL_INTERVAL_MS="2000",
    )
    assert plan.kafka["max_poll_interval_ms"] == 2_000
    assert plan.kafka["heartbeat_interval_ms"] == 500


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"KAFKA_COMPRESSION_TYPE": "zstd"}, "KAFKA_COMPRESSION_TYPE=zstd is not supported"),
        # Standard namespaces refuse compressed batches; the tier must be said.
        ({"KAFKA_COMPRESSION_TYPE": "gzip"}, "needs a Premium or Dedicated"),
        (
            {"KAFKA_COMPRESSION_TYPE": "gzip", "EVENTHUBS_TIER": "standard"},
            "EVENTHUBS_TIER is standard",
        ),
        ({"KAFKA_REQUEST_TIMEOUT_MS": "30000"}, "60000 or more"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL"}, "cannot reach Event Hubs"),
        ({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"}, "not what Event Hubs takes"),
        ({"KAFKA_SASL_USERNAME": "u"}, "set only one"),
        # Microsoft's 60 s request timeout leaves 120 s of delivery room too little.
        ({"KAFKA_DELIVERY_TIMEOUT_MS": "60000"}, "KAFKA_DELIVERY_TIMEOUT_MS=60000 must be more"),
    ],
)
def test_eventhubs_rules_for_the_producer(
    environ: Environ, variables: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        producer(environ, EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING, **variables)

    assert KEY not in str(error.value)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"KAFKA_SESSION_TIMEOUT_MS": "301000"}, "outside what Event Hubs accepts"),
        ({"KAFKA_COMMIT_INTERVAL_MS": "100"}, "4 per second per partition"),
        ({"KAFKA_GROUP_ID": "g" * 257}, "at most 256"),
        (
            {"KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "6000"},
            "must be less than KAFKA_SESSION_TIMEOUT_MS",
        ),
        (
            {"KAFKA_SESSION_TIMEOUT_MS": "30000", "KAFKA_MAX_POLL_INTERVAL_MS": "30000"},
            "must be more than KAFKA_SESSION_TIMEOUT_MS",
        ),
    ],
)
def test_eventhubs_rules_for_the_consumer(
    environ: Environ, variables: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        consumer(
            environ,
            EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
            EVENTHUBS_CONSUMER_GROUPID="g",
            **variables,
        )


def test_every_missing_setting_is_named_at_once(environ: Environ) -> None:
    with pytest.raises(ConfigError) as error:
        consumer(environ, KAFKA_SECURITY_PROTOCOL="SASL_SSL")

    assert error.value.problems == [
        "KAFKA_BOOTSTRAP_SERVERS (or EVENTHUBS_BROKER) is missing",
        "KAFKA_TOPIC (or EVENTHUBS_TOPIC) is missing",
        "KAFKA_SASL_USERNAME is missing (SASL_SSL)",
        "KAFKA_SASL_PASSWORD is missing (SASL_SSL)",
        "KAFKA_GROUP_ID (or EVENTHUBS_CONSUMER_GROUPID) is missing",
    ]


def test_a_ca_file_without_certificates_is_refused(environ: Environ, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")

    with pytest.raises(ConfigError, match="KAFKA_SSL_CAFILE: holds no PEM certificate"):
        producer(
            environ,
            KAFKA_BOOTSTRAP_SERVERS="kafka:9093",
            KAFKA_TOPIC="t",
            KAFKA_SECURITY_PROTOCOL="SSL",
            KAFKA_SSL_CAFILE=str(not_pem),
        )


def test_settings_cannot_be_changed_after_reading(environ: Environ) -> None:
    plan = producer(environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9092", KAFKA_TOPIC="t")

    with pytest.raises(ValueError, match="frozen"):
        plan.settings.topic = "other"  # type: ignore[misc]


def test_a_namespace_alone_signs_in_with_entra_id(environ: Environ) -> None:
    plan = consumer(environ, EVENTHUBS_NAMESPACE="contoso", KAFKA_TOPIC="t", KAFKA_GROUP_ID="g")

    provider = plan.kafka["sasl_oauth_token_provider"]
    assert isinstance(provider, EntraTokens)
    assert provider.scope == "https://contoso.servicebus.windows.net/.default"
    assert without_tls_context(plan.kafka) == {
        **CONSUMER,
        **{k: v for k, v in EVENTHUBS.items() if not k.startswith("sasl_plain")},
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": provider,
        "heartbeat_interval_ms": 3_000,
    }
    assert plan.kafka["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert isinstance(plan.connection.security, EventHubsEntra)
    assert plan.secrets == ()


@pytest.mark.parametrize(
    "variables",
    [
        {"KAFKA_BOOTSTRAP_SERVERS": "contoso.servicebus.chinacloudapi.cn:9093"},
        {"EVENTHUBS_BROKER": "contoso.servicebus.windows.net:9093"},
        {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9093",
            "EVENTHUBS_NAMESPACE": "contoso.servicebus.windows.net",
        },
        {
            "EVENTHUBS_NAMESPACE": "contoso.servicebus.windows.net",
            "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        },
    ],
)
def test_an_eventhubs_namespace_without_a_key_is_entra_id(
    environ: Environ, variables: dict[str, str]
) -> None:
    plan = producer(environ, KAFKA_TOPIC="t", **variables)

    assert isinstance(plan.connection.security, EventHubsEntra)
    assert plan.kafka["sasl_mechanism"] == "OAUTHBEARER"
    assert plan.kafka["request_timeout_ms"] == 60_000  # Microsoft's rules apply
    assert plan.kafka["sasl_oauth_token_provider"].scope.startswith("https://contoso.")


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "needs EVENTHUBS_NAMESPACE"),
        (
            {"EVENTHUBS_NAMESPACE": "contoso", "EVENTHUBS_CONNECTION_STRING": CONNECTION_STRING},
            "set only one",
        ),
        ({"EVENTHUBS_NAMESPACE": "contoso", "KAFKA_SASL_MECHANISM": "PLAIN"}, "uses OAUTHBEARER"),
        ({"EVENTHUBS_NAMESPACE": "contoso", "KAFKA_SECURITY_PROTOCOL": "SSL"}, "needs SASL_SSL"),
        ({"EVENTHUBS_NAMESPACE": "contoso", "KAFKA_SASL_PASSWORD": "x"}, "not used with"),
    ],
)
def test_entra_id_settings_that_cannot_work(
    environ: Environ, variables: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        producer(environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9093", KAFKA_TOPIC="t", **variables)

    assert KEY not in str(error.value)


def test_eventhubs_commits_at_most_4_times_a_second_per_partition(environ: Environ) -> None:
    kafka = consumer(
        environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9092", KAFKA_TOPIC="t", KAFKA_GROUP_ID="g"
    )
    assert kafka.commit_interval_ms == 100
    eventhubs = consumer(
        environ,
        EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
        KAFKA_BOOTSTRAP_SERVERS="",
        KAFKA_TOPIC="orders",  # the key's EntityPath: a key for one event hub opens no other
    )
    assert eventhubs.commit_interval_ms == 300  # under the 250 ms limit, with room
    slower = consumer(environ, KAFKA_COMMIT_INTERVAL_MS="1000")
    assert slower.commit_interval_ms == 1000


def test_sasl_with_an_empty_password_is_still_sasl(environ: Environ) -> None:
    # A flag given as --sasl-password "" is a (bad) password, not "no SASL".
    environ(
        KAFKA_BOOTSTRAP_SERVERS="kafka:9094",
        KAFKA_TOPIC="t",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_USERNAME="alice",
    )
    plan = resolve(load(ProducerSettings, {"sasl_password": ""}))

    assert isinstance(plan.connection.security, Sasl)
    assert plan.kafka["security_protocol"] == "SASL_PLAINTEXT"


def test_a_topic_other_than_the_keys_entity_path_is_refused(environ: Environ) -> None:
    """A policy of one event hub (EntityPath=orders) cannot open another: say so at start."""
    environ(EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING, EVENTHUBS_TOPIC="payments")
    with pytest.raises(ConfigError, match="EntityPath=orders") as error:
        resolve(load(ProducerSettings))
    assert KEY not in str(error.value)


def test_the_keys_entity_path_named_again_as_the_topic_is_fine(environ: Environ) -> None:
    environ(EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING, EVENTHUBS_TOPIC="orders")
    assert resolve(load(ProducerSettings)).topic == "orders"
