"""The keyword arguments our kafka-python clients take, as types mypy can check.

They are built once, by ``resolve``; the services, tests and benchmarks
pass them to ``KafkaProducer(**plan.kafka)`` or ``KafkaConsumer(**plan.kafka)``.
"""

from __future__ import annotations

import ssl
from typing import Literal, Required, TypedDict

#: The one spelling of each, for the settings, the security variants and the client.
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class SecurityArgs(TypedDict, total=False):
    """What a security variant gives the client (``Security.client_args``)."""

    security_protocol: Required[SecurityProtocol]
    ssl_context: ssl.SSLContext
    sasl_mechanism: SaslMechanism
    sasl_plain_username: str
    sasl_plain_password: str
    #: A kafka.net.sasl.oauth.AbstractTokenProvider (common.entra.EntraTokens).
    sasl_oauth_token_provider: object


class ConnectionArgs(TypedDict, total=False):
    """Where the broker is and how the client keeps its connections (``_client_args``)."""

    bootstrap_servers: Required[list[str]]
    client_id: Required[str]
    bootstrap_timeout_ms: Required[int]
    reconnect_backoff_max_ms: Required[int]
    request_timeout_ms: Required[int]
    allow_auto_create_topics: Required[bool]
    metadata_max_age_ms: int
    connections_max_idle_ms: int


class ClientArgs(SecurityArgs, ConnectionArgs, total=False):
    """What every client of ours sets."""


class ProducerArgs(ClientArgs, total=False):
    """``KafkaProducer`` arguments."""

    acks: Required[Literal["all"]]
    enable_idempotence: Required[bool]
    compression_type: Required[str | None]
    linger_ms: Required[int]
    delivery_timeout_ms: Required[int]
    max_block_ms: Required[int]
    max_request_size: Required[int]


class TransactionalArgs(ProducerArgs, total=False):
    """A transactional ``KafkaProducer``'s: exactly once, outputs and input offsets in one
    transaction."""

    transactional_id: Required[str]
    transaction_timeout_ms: Required[int]


class ConsumerArgs(ClientArgs, total=False):
    """``KafkaConsumer`` arguments."""

    group_id: Required[str]
    enable_auto_commit: Required[bool]
    auto_offset_reset: Required[Literal["earliest", "latest"]]
    partition_assignment_strategy: Required[tuple[type, ...]]
    session_timeout_ms: Required[int]
    heartbeat_interval_ms: Required[int]
    max_poll_records: Required[int]
    max_poll_interval_ms: Required[int]
    fetch_max_bytes: Required[int]
    isolation_level: Literal["read_uncommitted", "read_committed"]
