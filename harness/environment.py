"""The one place a service's environment is built, for the tests, the demo and the benchmarks."""

from __future__ import annotations

from pathlib import Path


def service_env(bootstrap: str = "", **settings: str) -> dict[str, str]:
    """Settings for a service run by the harness: HTTP on a free loopback port, JSON logs.

    *bootstrap* becomes ``KAFKA_BOOTSTRAP_SERVERS``; *settings* are added last.
    """
    env = {"METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0", "LOG_FORMAT": "json"}
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    return {**env, **settings}


def walkthrough_env(
    address: str,
    connection_string: str,
    ca_file: Path,
    topic: str,
    group: str = "",
    **settings: str,
) -> dict[str, str]:
    """Only the Go walkthrough's variables, plus the CA file that makes TLS verifiable.

    This is how a user of the walkthrough configures an Event Hubs namespace:
    SASL_SSL, PLAIN and ``$ConnectionString`` all follow from the connection string.
    """
    env = service_env(
        EVENTHUBS_CONNECTION_STRING=connection_string,
        EVENTHUBS_BROKER=address,
        EVENTHUBS_TOPIC=topic,
        KAFKA_SSL_CAFILE=str(ca_file),
        **settings,
    )
    if group:
        env["EVENTHUBS_CONSUMER_GROUPID"] = group
    return env


def entra_env(
    address: str,
    namespace: str,
    ca_file: Path,
    topic: str,
    group: str = "",
    **settings: str,
) -> dict[str, str]:
    """Signing in with Microsoft Entra ID: the namespace, no key; *address* where it listens.

    *settings* add what points azure-identity at its token source.
    """
    env = service_env(
        address,
        EVENTHUBS_NAMESPACE=namespace,
        KAFKA_TOPIC=topic,
        KAFKA_SSL_CAFILE=str(ca_file),
        **settings,
    )
    if group:
        env["KAFKA_GROUP_ID"] = group
    return env
