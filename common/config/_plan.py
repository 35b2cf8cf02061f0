"""Settings resolved into what a service does: one plan, decided in one place.

``resolve`` is where settings meet each other: an Event Hubs connection
string implies the servers, the topic and the security; Microsoft's rules
for Event Hubs apply; cross-field limits are checked; the secrets the log
redactor hides are listed; and the kafka-python arguments are built. No
other code decides what the Kafka client is given.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import overload

from kafka import codec
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from pydantic_settings import BaseSettings

from common import eventhubs
from common.config._env import label
from common.config._errors import ConfigError
from common.config._kafka_args import (
    ClientArgs,
    ConnectionArgs,
    ConsumerArgs,
    ProducerArgs,
    SaslMechanism,
    TransactionalArgs,
)
from common.config._named import ImportFailed, import_handler, import_source
from common.config._security import (
    EventHubsEntra,
    EventHubsKey,
    Plaintext,
    Sasl,
    Security,
    Tls,
    tls_context,
)
from common.config._settings import ConsumerSettings, KafkaSettings, ProducerSettings
from common.entra import EntraTokens

#: How long one connection attempt may take; short, so SIGTERM is never kept waiting.
BOOTSTRAP_TIMEOUT_MS = 5_000
#: Longest wait between two reconnects to a broker (the Java client's default).
#: kafka-python backs off up to 30 s; after a broker restart that is long
#: enough for the group to evict a consumer and re-deliver what it processed.
RECONNECT_BACKOFF_MAX_MS = 1_000
#: kafka-python's request.timeout.ms, where neither the user nor Event Hubs set one.
DEFAULT_REQUEST_TIMEOUT_MS = 30_000
#: kafka-python's max.request.size, where Event Hubs does not need a smaller one.
DEFAULT_MAX_REQUEST_SIZE = 1_048_576
#: How long send() and partitions_for() wait for metadata or buffer space;
#: short, so a SIGTERM is never kept waiting.
MAX_BLOCK_MS = 3_000
#: Most a fetch answer holds (a soft limit: a larger record batch still comes
#: whole). kafka-python's 50 MiB let a consumer behind a fast producer hold
#: fetches of every partition at once: peak 85-98 MiB against 60 MiB with
#: 1 MiB, at no rate we could measure (docs/performance.md).
FETCH_MAX_BYTES = 1_048_576
#: A dead letter's delivery timeout beyond its request timeout: room for one retry.
DEAD_LETTER_DELIVERY_SLACK_MS = 30_000
#: How long the outputs' producer gathers records into a batch.
OUTPUT_LINGER_MS = 5
#: Longest a transaction may stay open: one a killed member left is aborted by then.
#: Ours last one commit interval.
TRANSACTION_TIMEOUT_MS = 10_000

ASSIGNORS: dict[str, type] = {
    "cooperative-sticky": CooperativeStickyAssignor,
    "sticky": StickyPartitionAssignor,
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
}


#: Whether kafka-python can use each codec here: it imports their libraries
#: if it can, and fails only when a batch needs them.
CODECS = {
    "gzip": codec.has_gzip,
    "snappy": codec.has_snappy,
    "lz4": codec.has_lz4,
    "zstd": codec.has_zstd,
}
#: The Python package kafka-python needs for each codec (kafka-python's extras).
CODEC_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


@dataclass(frozen=True)
class Connection:
    """Where the broker is, who we are to it, and how we prove it."""

    bootstrap_servers: tuple[str, ...]
    client_id: str
    security: Security
    #: The Event Hubs namespace's host (contoso.servicebus.windows.net), when it is one:
    #: from a connection string, EVENTHUBS_NAMESPACE or the bootstrap servers' names.
    namespace: str | None = None

    @property
    def eventhubs(self) -> bool:
        """Microsoft's rules for Event Hubs apply."""
        return self.namespace is not None


@dataclass(frozen=True)
class ProducerPlan:
    """Everything the producer does, resolved: its settings, connection and client."""

    settings: ProducerSettings
    topic: str
    connection: Connection
    #: Values the log redactor replaces wherever they appear.
    secrets: tuple[str, ...] = field(repr=False)
    #: Holds the SASL password: kept out of the repr.
    kafka: ProducerArgs = field(repr=False)
    #: What PRODUCER_SOURCE names: a built-in's name, or the user's iterable or
    #: factory of one, imported; None: numbered envelopes.
    source: str | Callable[[], object] | Iterable[object] | None = None


@dataclass(frozen=True)
class ConsumerPlan:
    """Everything the consumer does, resolved: its settings, group, connection and client."""

    settings: ConsumerSettings
    topic: str
    group_id: str
    #: How often processed offsets are committed, at most (Event Hubs: 4/s per partition).
    commit_interval_ms: int
    connection: Connection
    #: Values the log redactor replaces wherever they appear.
    secrets: tuple[str, ...] = field(repr=False)
    #: Holds the SASL password: kept out of the repr.
    kafka: ConsumerArgs = field(repr=False)
    #: What CONSUMER_HANDLER names, imported; None: log each record.
    handler: Callable[..., object] | None = None
    #: The dead-letter topic's producer, when CONSUMER_DEAD_LETTER_TOPIC is set.
    dead_letter_kafka: ProducerArgs | None = field(default=None, repr=False)
    #: The producer of what the handler returns (consumer/outputs.py).
    output_kafka: ProducerArgs | None = field(default=None, repr=False)


@overload
def resolve(settings: ProducerSettings) -> ProducerPlan: ...
@overload
def resolve(settings: ConsumerSettings) -> ConsumerPlan: ...
def resolve(settings: ProducerSettings | ConsumerSettings) -> ProducerPlan | ConsumerPlan:
    """The plan for *settings*; ConfigError names every problem found, never a value."""
    problems = _Problems(type(settings))
    connection, topic = _connection(settings, problems)
    secrets = _secrets(connection.security)
    if isinstance(settings, ProducerSettings):
        producer = _producer_args(settings, connection, problems)
        source = _source(settings, problems)
        problems.raise_any()
        assert topic is not None  # a missing topic is a problem raised above
        return ProducerPlan(settings, topic, connection, secrets, producer, source)
    group_id = settings.group_id
    if group_id is None:
        problems.missing("group_id")
    consumer = _consumer_args(settings, connection, group_id or "", problems)
    commit_interval_ms = _commit_interval_ms(settings, connection, problems)
    handler = _handler(settings, problems)
    dead_letter = _dead_letter_args(settings, topic, connection, problems)
    output = _output_args(settings, topic, group_id or "", connection, problems)
    problems.raise_any()
    assert topic is not None  # a missing topic or group is a problem raised above
    assert group_id is not None
    return ConsumerPlan(
        settings,
        topic,
        group_id,
        commit_interval_ms,
        connection,
        secrets,
        consumer,
        handler,
        dead_letter,
        output,
    )


class _Problems:
    """Collects what is wrong, so that one run names every problem."""

    def __init__(self, model: type[BaseSettings]) -> None:
        self._model = model
        self.lines: list[str] = []
        self.errors: list[BaseException] = []

    def add(self, line: str, error: ValueError | None = None) -> None:
        """*line*; and when *error* is the user's module failing, its error too."""
        self.lines.append(line)
        if isinstance(error, ImportFailed):
            self.errors.append(error.error)

    def missing(self, field: str) -> None:
        self.add(f"{label(self._model, field)} is missing")

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError(self.lines, self.errors)


def _connection(settings: KafkaSettings, problems: _Problems) -> tuple[Connection, str | None]:
    parsed = None
    if settings.eventhubs_connection_string is not None:
        # Checked when the settings were read; parsed again for its parts.
        parsed = eventhubs.parse_connection_string(
            settings.eventhubs_connection_string.get_secret_value()
        )
    namespace = _namespace(settings, parsed)
    # A connection string's namespace, or EVENTHUBS_NAMESPACE, implies the servers.
    servers = settings.bootstrap_servers or (
        f"{namespace}:{eventhubs.KAFKA_PORT}" if namespace is not None else None
    )
    entity_path = parsed.entity_path if parsed else None
    topic = settings.topic or entity_path
    if entity_path is not None and topic is not None and topic != entity_path:
        # A key with EntityPath= is a policy of that one event hub: it opens no other.
        problems.add(
            f"{label(type(settings), 'topic')}={topic} is not the event hub the connection "
            f"string's key is for (EntityPath={entity_path}): use a namespace-level "
            "connection string, or unset the topic"
        )
    if servers is None:
        problems.missing("bootstrap_servers")
    if topic is None:
        problems.missing("topic")
    bootstrap = tuple(servers.split(",")) if servers else ()
    if parsed is not None:
        _refuse_servers_elsewhere(settings, parsed.host, bootstrap, problems)
    service = "producer" if isinstance(settings, ProducerSettings) else "consumer"
    connection = Connection(
        bootstrap_servers=bootstrap,
        client_id=settings.client_id or f"{service}-{socket.gethostname()}",
        security=_security(settings, parsed, namespace, problems),
        namespace=namespace,
    )
    return connection, topic


def _refuse_servers_elsewhere(
    settings: KafkaSettings, namespace: str, servers: tuple[str, ...], problems: _Problems
) -> None:
    """Bootstrap servers that are not the connection string's namespace cannot work: the
    namespace's certificate is for its own name, and TLS is verified. (A KAFKA_SSL_CAFILE
    says the other end is a proxy of the user's, with a certificate of theirs.) Most often
    it is .env.example's local KAFKA_BOOTSTRAP_SERVERS, left set beside the Event Hubs block.
    """
    if settings.ssl_cafile is not None or not settings.ssl_verify:
        return
    elsewhere = [s for s in servers if s.rsplit(":", 1)[0].lower() != namespace]
    if elsewhere:
        problems.add(
            f"{label(type(settings), 'bootstrap_servers')}={','.join(elsewhere)} is not the "
            f"connection string's namespace {namespace}, whose certificate is for its own "
            "name: unset it (the namespace is used), or name the namespace"
        )


def _namespace(
    settings: KafkaSettings, connection_string: eventhubs.ConnectionString | None
) -> str | None:
    """The Event Hubs namespace host, from whichever setting names it; None if not Event Hubs."""
    if settings.eventhubs_namespace is not None:
        return eventhubs.namespace_host(settings.eventhubs_namespace)
    if connection_string is not None:
        return connection_string.host
    servers = (settings.bootstrap_servers or "").split(",")
    hosts = [s.rsplit(":", 1)[0].lower() for s in servers if eventhubs.is_eventhubs_host(s)]
    return hosts[0] if hosts else None


def _security(
    settings: KafkaSettings,
    connection_string: eventhubs.ConnectionString | None,
    namespace: str | None,
    problems: _Problems,
) -> Security:
    if connection_string is not None:
        _refuse_contradictions(
            settings,
            problems,
            mechanism="PLAIN",
            how="with a connection string (EVENTHUBS_CONNECTION_STRING)",
            remedy="set only one",
        )
        if settings.eventhubs_namespace is not None:
            problems.add(
                "EVENTHUBS_NAMESPACE (sign in with Entra ID) and EVENTHUBS_CONNECTION_STRING "
                "(sign in with a key) are both set; set only one"
            )
        return EventHubsKey(connection_string, _tls(settings, problems))
    if _signs_in_with_entra(settings, namespace):
        return _entra(settings, namespace, problems)
    protocol = settings.security_protocol
    tls = _tls(settings, problems) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL_"):
        return _sasl(settings, tls, problems)
    return Plaintext() if tls is None else tls


def _refuse_contradictions(
    settings: KafkaSettings,
    problems: _Problems,
    *,
    mechanism: SaslMechanism,
    how: str,
    remedy: str,
) -> None:
    """What explicit settings say against signing in to Event Hubs *how*: SASL_SSL, *mechanism*."""
    explicit = settings.model_fields_set
    if "security_protocol" in explicit and settings.security_protocol != "SASL_SSL":
        problems.add(
            f"KAFKA_SECURITY_PROTOCOL={settings.security_protocol} cannot reach Event Hubs "
            f"{how}, which needs SASL_SSL; unset it"
        )
    if "sasl_mechanism" in explicit and settings.sasl_mechanism != mechanism:
        problems.add(
            f"KAFKA_SASL_MECHANISM={settings.sasl_mechanism} is not what Event Hubs takes "
            f"{how}, which uses {mechanism}; unset it"
        )
    if "sasl_username" in explicit or "sasl_password" in explicit:
        problems.add(f"KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are not used {how}; {remedy}")


def _sasl(settings: KafkaSettings, tls: Tls | None, problems: _Problems) -> Security:
    protocol, username, password = (
        settings.security_protocol,
        settings.sasl_username,
        settings.sasl_password,
    )
    if not username:
        problems.add(f"KAFKA_SASL_USERNAME is missing ({protocol})")
    if password is None:
        problems.add(f"KAFKA_SASL_PASSWORD is missing ({protocol})")
    if not username or password is None:
        return Plaintext() if tls is None else tls  # a problem raised by resolve
    return Sasl(settings.sasl_mechanism, username, password, tls)


def _signs_in_with_entra(settings: KafkaSettings, namespace: str | None) -> bool:
    """Entra ID when asked for, or when an Event Hubs namespace comes with no key at all."""
    if settings.sasl_mechanism == "OAUTHBEARER" or settings.eventhubs_namespace is not None:
        return True
    chosen = {"security_protocol", "sasl_mechanism", "sasl_username", "sasl_password"}
    return namespace is not None and not chosen & settings.model_fields_set


def _entra(settings: KafkaSettings, namespace: str | None, problems: _Problems) -> Security:
    _refuse_contradictions(
        settings,
        problems,
        mechanism="OAUTHBEARER",
        how="with Microsoft Entra ID (EVENTHUBS_NAMESPACE or OAUTHBEARER)",
        remedy="unset them",
    )
    if namespace is None:
        problems.add(
            "KAFKA_SASL_MECHANISM=OAUTHBEARER needs EVENTHUBS_NAMESPACE: the Event Hubs "
            "namespace the token is for"
        )
        namespace = "unknown.servicebus.windows.net"
    return EventHubsEntra(namespace, _tls(settings, problems), EntraTokens(namespace))


def _tls(settings: KafkaSettings, problems: _Problems) -> Tls:
    try:
        context = tls_context(settings.ssl_cafile, settings.ssl_verify)
    except (ssl.SSLError, OSError):
        problems.add("KAFKA_SSL_CAFILE: holds no PEM certificate that TLS can use")
        context = tls_context(None, settings.ssl_verify)
    return Tls(context, settings.ssl_cafile, settings.ssl_verify)


def _secrets(security: Security) -> tuple[str, ...]:
    """Every secret value, longest first, for the log redactor."""
    return tuple(sorted({s for s in security.secrets() if len(s) >= 4}, key=len, reverse=True))


def _request_timeout_ms(requested: int | None, connection: Connection) -> int:
    if requested is not None:
        return requested
    return eventhubs.REQUEST_TIMEOUT_MS if connection.eventhubs else DEFAULT_REQUEST_TIMEOUT_MS


def _client_args(connection: Connection, request_timeout_ms: int) -> ClientArgs:
    args: ConnectionArgs = {
        "bootstrap_servers": list(connection.bootstrap_servers),
        "client_id": connection.client_id,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "request_timeout_ms": request_timeout_ms,
        # A misspelt topic is an error, not a new topic: Event Hubs creates an
        # event hub on request for an identity with Manage rights.
        "allow_auto_create_topics": False,
    }
    if connection.eventhubs:
        # Azure drops connections idle for 240 s: close and refresh before it does.
        args["metadata_max_age_ms"] = eventhubs.METADATA_MAX_AGE_MS
        args["connections_max_idle_ms"] = eventhubs.CONNECTIONS_MAX_IDLE_MS
    return {**connection.security.client_args(), **args}


def _producer_args(
    settings: ProducerSettings, connection: Connection, problems: _Problems
) -> ProducerArgs:
    request_timeout_ms = _request_timeout_ms(settings.request_timeout_ms, connection)
    compression = settings.compression_type
    if connection.eventhubs:
        _eventhubs_producer_rules(settings, request_timeout_ms, problems)
    if compression != "none" and not CODECS[compression]():
        problems.add(
            f"KAFKA_COMPRESSION_TYPE={compression} needs the Python package "
            f"{CODEC_PACKAGES[compression]}, which is not installed"
        )
    # kafka-python refuses this too, but only when the client is built.
    least = settings.linger_ms + request_timeout_ms
    if settings.delivery_timeout_ms <= least:
        problems.add(
            f"KAFKA_DELIVERY_TIMEOUT_MS={settings.delivery_timeout_ms} must be more than "
            f"KAFKA_LINGER_MS + KAFKA_REQUEST_TIMEOUT_MS ({least})"
        )
    return {
        **_client_args(connection, request_timeout_ms),
        # Idempotent, and acknowledged by every in-sync replica: nothing lost,
        # nothing written twice by a retry.
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": None if compression == "none" else compression,
        "linger_ms": settings.linger_ms,
        "delivery_timeout_ms": settings.delivery_timeout_ms,
        "max_block_ms": MAX_BLOCK_MS,
        "max_request_size": (
            eventhubs.MAX_REQUEST_SIZE if connection.eventhubs else DEFAULT_MAX_REQUEST_SIZE
        ),
    }


def _eventhubs_producer_rules(
    settings: ProducerSettings, request_timeout_ms: int, problems: _Problems
) -> None:
    compression = settings.compression_type
    if compression not in eventhubs.SUPPORTED_COMPRESSION:
        problems.add(
            f"KAFKA_COMPRESSION_TYPE={compression} is not supported by Event Hubs; use none or gzip"
        )
    elif compression != "none" and settings.eventhubs_tier not in eventhubs.COMPRESSING_TIERS:
        tier = settings.eventhubs_tier or "not given"
        problems.add(
            f"KAFKA_COMPRESSION_TYPE={compression} needs a Premium or Dedicated Event Hubs "
            f"namespace (EVENTHUBS_TIER is {tier}); a Standard one refuses compressed "
            "batches: use none, or set EVENTHUBS_TIER=premium or dedicated"
        )
    if request_timeout_ms < eventhubs.REQUEST_TIMEOUT_MS:
        problems.add(
            f"KAFKA_REQUEST_TIMEOUT_MS={request_timeout_ms} is below what Event Hubs needs "
            f"from the idempotent producer ({eventhubs.REQUEST_TIMEOUT_MS} or more)"
        )


def _heartbeat_interval_ms(settings: ConsumerSettings, connection: Connection) -> int:
    if connection.eventhubs and "heartbeat_interval_ms" not in settings.model_fields_set:
        return eventhubs.HEARTBEAT_INTERVAL_MS
    return settings.heartbeat_interval_ms


def _commit_interval_ms(
    settings: ConsumerSettings, connection: Connection, problems: _Problems
) -> int:
    requested = settings.commit_interval_ms
    if not connection.eventhubs:
        return requested
    least = eventhubs.MIN_COMMIT_INTERVAL_MS
    if "commit_interval_ms" not in settings.model_fields_set:
        return max(requested, eventhubs.COMMIT_INTERVAL_MS)
    if requested < least:
        problems.add(
            f"KAFKA_COMMIT_INTERVAL_MS={requested} commits more often than Event Hubs allows "
            f"(4 per second per partition); use {least} or more"
        )
    return requested


def _consumer_args(
    settings: ConsumerSettings, connection: Connection, group_id: str, problems: _Problems
) -> ConsumerArgs:
    heartbeat_interval_ms = _heartbeat_interval_ms(settings, connection)
    # The broker rejects a JoinGroup otherwise; say so before connecting.
    if heartbeat_interval_ms >= settings.session_timeout_ms:
        problems.add(
            f"KAFKA_HEARTBEAT_INTERVAL_MS={heartbeat_interval_ms} must be less than "
            f"KAFKA_SESSION_TIMEOUT_MS ({settings.session_timeout_ms})"
        )
    if connection.eventhubs and settings.max_poll_interval_ms <= settings.session_timeout_ms:
        problems.add(
            f"KAFKA_MAX_POLL_INTERVAL_MS={settings.max_poll_interval_ms} must be more than "
            f"KAFKA_SESSION_TIMEOUT_MS ({settings.session_timeout_ms}) on Event Hubs"
        )
    strategies = settings.assignment_strategy
    if "cooperative-sticky" in strategies and len(strategies) > 1:
        # kafka-python cannot switch between eager and cooperative rebalancing.
        problems.add(
            "KAFKA_PARTITION_ASSIGNMENT_STRATEGY: cooperative-sticky cannot be listed with "
            "other assignors (they rebalance eagerly); list it alone"
        )
    if connection.eventhubs and len(group_id) > eventhubs.MAX_GROUP_ID_LENGTH:
        problems.add(
            f"KAFKA_GROUP_ID is {len(group_id)} characters; Event Hubs takes at most "
            f"{eventhubs.MAX_GROUP_ID_LENGTH}"
        )
    low, high = eventhubs.SESSION_TIMEOUT_RANGE_MS
    if connection.eventhubs and not low <= settings.session_timeout_ms <= high:
        problems.add(
            f"KAFKA_SESSION_TIMEOUT_MS={settings.session_timeout_ms} is outside what Event Hubs "
            f"accepts ({low} to {high}; 30000 recommended)"
        )
    return {
        **_client_args(connection, _request_timeout_ms(None, connection)),
        "group_id": group_id,
        # Offsets are committed by the service once a message is processed,
        # never by a timer that does not know what was processed.
        "enable_auto_commit": False,
        "auto_offset_reset": settings.auto_offset_reset,
        # Exactly once reads only what committed transactions wrote, as Kafka Streams does.
        "isolation_level": (
            "read_committed"
            if settings.processing_guarantee == "exactly_once"
            else "read_uncommitted"
        ),
        "partition_assignment_strategy": tuple(ASSIGNORS[name] for name in strategies),
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": heartbeat_interval_ms,
        "max_poll_records": settings.max_poll_records,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "fetch_max_bytes": FETCH_MAX_BYTES,
    }


#: PRODUCER_SOURCE's built-in sources (producer/stdin.py).
BUILT_IN_SOURCES = ("stdin-json", "stdin-text")


def _source(
    settings: ProducerSettings, problems: _Problems
) -> str | Callable[[], object] | Iterable[object] | None:
    spec = settings.source
    if spec is None or spec in BUILT_IN_SOURCES:
        return spec
    if ":" not in spec:
        problems.add(
            f"PRODUCER_SOURCE={spec} is neither {' nor '.join(BUILT_IN_SOURCES)} nor "
            "package.module:name"
        )
        return None
    try:
        return import_source(spec)
    except ValueError as exc:
        problems.add(f"PRODUCER_SOURCE={spec}: {exc}", exc)
        return None


def _handler(settings: ConsumerSettings, problems: _Problems) -> Callable[..., object] | None:
    if settings.retry_backoff_max_ms < settings.retry_backoff_ms:
        problems.add(
            f"CONSUMER_RETRY_BACKOFF_MAX_MS={settings.retry_backoff_max_ms} is less than "
            f"CONSUMER_RETRY_BACKOFF_MS ({settings.retry_backoff_ms})"
        )
    if settings.handler is None:
        return None
    try:
        return import_handler(settings.handler)
    except ValueError as exc:
        problems.add(f"CONSUMER_HANDLER={settings.handler}: {exc}", exc)
        return None


def _dead_letter_args(
    settings: ConsumerSettings, topic: str | None, connection: Connection, problems: _Problems
) -> ProducerArgs | None:
    dead_letter_topic = settings.dead_letter_topic
    if dead_letter_topic is None:
        return None
    if dead_letter_topic == topic:
        problems.add(
            f"CONSUMER_DEAD_LETTER_TOPIC={dead_letter_topic} is the topic consumed: its "
            "records would come back to the handler that gave up on them"
        )
    return _acknowledged_args(connection, linger_ms=0)


def _output_args(
    settings: ConsumerSettings,
    topic: str | None,
    group_id: str,
    connection: Connection,
    problems: _Problems,
) -> ProducerArgs:
    output_topic = settings.output_topic
    if output_topic is not None and output_topic == topic:
        problems.add(
            f"CONSUMER_OUTPUT_TOPIC={output_topic} is the topic consumed: each output "
            "would come back to the handler that wrote it"
        )
    # Outputs come many to a poll: a few milliseconds gather them into batches, and
    # every commit flushes what waits.
    args = _acknowledged_args(connection, linger_ms=OUTPUT_LINGER_MS)
    if settings.processing_guarantee == "exactly_once":
        if settings.ordering != "partition":
            problems.add(
                f"CONSUMER_PROCESSING_GUARANTEE=exactly_once with CONSUMER_ORDERING="
                f"{settings.ordering}: a transaction commits what the polling thread handled; "
                "use CONSUMER_ORDERING=partition"
            )
        # Stable across restarts of one member, so that a new producer aborts what its
        # killed predecessor left open, instead of readers waiting out the timeout.
        transactional: TransactionalArgs = {
            **args,
            "transactional_id": f"{group_id}.{connection.client_id}",
            "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS,
        }
        return transactional
    return args


def _acknowledged_args(connection: Connection, *, linger_ms: int) -> ProducerArgs:
    """A producer whose every record is acknowledged before the input's offset is committed."""
    request_timeout_ms = _request_timeout_ms(None, connection)
    return {
        **_client_args(connection, request_timeout_ms),
        # Acknowledged by every in-sync replica before the original is committed.
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": None,
        "linger_ms": linger_ms,
        "delivery_timeout_ms": request_timeout_ms + DEAD_LETTER_DELIVERY_SLACK_MS,
        "max_block_ms": MAX_BLOCK_MS,
        "max_request_size": (
            eventhubs.MAX_REQUEST_SIZE if connection.eventhubs else DEFAULT_MAX_REQUEST_SIZE
        ),
    }
