"""Settings of both services: environment variables to typed values, each checked alone.

A settings object says what the environment says, nothing more: it is
immutable, and no check here looks at two fields at once or fills one from
another. What follows from several settings together (Event Hubs' rules,
the bootstrap servers a connection string implies) is decided once, in
``resolve``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import FilePath, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from common import eventhubs
from common.config._env import env
from common.config._files import SecretFiles
from common.config._kafka_args import SaslMechanism, SecurityProtocol

AssignmentStrategy = Literal["sticky", "cooperative-sticky", "range", "roundrobin"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
Tier = Literal["standard", "premium", "dedicated"]

_TOPIC = re.compile(r"^[A-Za-z0-9._-]+$")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_HOST_PORT = re.compile(r"^\[?[A-Za-z0-9.:_-]+\]?:(\d{1,5})$")


class KafkaSettings(BaseSettings):
    """What both services need: where Kafka is, how to authenticate, how to report."""

    model_config = SettingsConfigDict(
        # A blank variable, as an .env template leaves it, means "not set".
        env_ignore_empty=True,
        # Values pasted from a portal or a wiki often carry a space or newline.
        str_strip_whitespace=True,
        extra="ignore",
        hide_input_in_errors=True,
        frozen=True,
    )

    # Required, but an Event Hubs connection string can stand in for these two:
    # ``resolve`` says when neither is there.
    bootstrap_servers: str | None = env(
        "KAFKA_BOOTSTRAP_SERVERS",
        "EVENTHUBS_BROKER",
        description="Comma-separated host:port list; for Event Hubs <namespace>"
        ".servicebus.windows.net:9093, taken from the connection string when unset",
        default=None,
    )
    topic: str | None = env(
        "KAFKA_TOPIC",
        "EVENTHUBS_TOPIC",
        description="Topic (event hub) to use; an EntityPath in the connection string sets it",
        default=None,
        min_length=1,
        max_length=249,
    )
    security_protocol: SecurityProtocol = env(
        "KAFKA_SECURITY_PROTOCOL",
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (SASL_SSL for Event Hubs)",
        default="PLAINTEXT",
    )
    sasl_mechanism: SaslMechanism = env(
        "KAFKA_SASL_MECHANISM",
        description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (Event Hubs: PLAIN "
        "with a connection string, OAUTHBEARER with EVENTHUBS_NAMESPACE)",
        default="PLAIN",
    )
    sasl_username: str | None = env(
        "KAFKA_SASL_USERNAME",
        description="SASL user name ($ConnectionString for Event Hubs)",
        default=None,
    )
    sasl_password: SecretStr | None = env(
        "KAFKA_SASL_PASSWORD",
        description="SASL password (for Event Hubs, the connection string); never logged; "
        "or a file named by KAFKA_SASL_PASSWORD_FILE",
        default=None,
    )
    eventhubs_namespace: str | None = env(
        "EVENTHUBS_NAMESPACE",
        description="Event Hubs namespace to sign in to with Microsoft Entra ID, no key: "
        "contoso, or contoso.servicebus.windows.net in any Azure cloud. Selects SASL_SSL and "
        "OAUTHBEARER with tokens from azure-identity (managed identity, workload identity, "
        "Azure CLI...); also the bootstrap servers when KAFKA_BOOTSTRAP_SERVERS is unset",
        default=None,
    )
    eventhubs_connection_string: SecretStr | None = env(
        "EVENTHUBS_CONNECTION_STRING",
        description="Event Hubs namespace connection string; alone it implies SASL_SSL, "
        "PLAIN, user $ConnectionString, the bootstrap servers and, with EntityPath, "
        "the topic; never logged; or a file named by EVENTHUBS_CONNECTION_STRING_FILE",
        default=None,
    )
    ssl_cafile: FilePath | None = env(
        "KAFKA_SSL_CAFILE",
        description="PEM file of CA certificates to trust instead of the system's",
        default=None,
    )
    ssl_verify: bool = env(
        "KAFKA_SSL_VERIFY",
        description="Verify the broker's TLS certificate and host name; false is for "
        "debugging only and logs a warning",
        default=True,
    )
    client_id: str = env(
        "KAFKA_CLIENT_ID",
        description="Client id the broker sees; default: service name and host name",
        default="",
    )
    metrics_host: str = env(
        "METRICS_HOST",
        description="Address the /metrics, /healthz and /readyz server binds to, IPv4 or IPv6",
        default="0.0.0.0",  # noqa: S104  (a container must be reachable by Prometheus)
    )
    metrics_port: int = env(
        "METRICS_PORT",
        description="Port of the /metrics, /healthz and /readyz server; 0 picks a free one",
        default=8000,
        ge=0,
        le=65535,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = env(
        "LOG_LEVEL", description="DEBUG, INFO, WARNING or ERROR", default="INFO"
    )
    log_format: Literal["auto", "json", "console"] = env(
        "LOG_FORMAT",
        description="json, console, or auto (console on a terminal, else json)",
        default="auto",
    )
    log_message_every: int = env(
        "LOG_MESSAGE_EVERY",
        description="Log every Nth message sent or received (1: all, 0: none); "
        "the metrics count them all",
        default=1,
        ge=0,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags, then variables, then secrets given as files (``NAME_FILE``)."""
        return init_settings, env_settings, SecretFiles(settings_cls)

    @field_validator(
        "security_protocol", "sasl_mechanism", "log_level", "log_format", mode="before"
    )
    @classmethod
    def _normalise_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.lower() if info.field_name == "log_format" else value.upper()

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("is empty; expected host:port[,host:port...]")
        for server in servers:
            match = _HOST_PORT.match(server)
            if not match or not 0 < int(match.group(1)) <= 65535:
                raise ValueError(f"'{server}' is not host:port")
        return ",".join(servers)

    @field_validator("topic")
    @classmethod
    def _check_topic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Kafka's rule for topic names; Event Hubs names fit in it too.
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError(
                "is not a topic name: use letters, digits, '.', '_' and '-' (no spaces)"
            )
        return value

    @field_validator("eventhubs_namespace")
    @classmethod
    def _check_namespace(cls, value: str | None) -> str | None:
        if value is not None and not eventhubs.is_namespace(value):
            raise ValueError(
                "is not a namespace: use its name (contoso) or host name "
                "(contoso.servicebus.windows.net)"
            )
        return value

    @field_validator("eventhubs_connection_string")
    @classmethod
    def _check_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            parsed = eventhubs.parse_connection_string(value.get_secret_value())
        except eventhubs.ConnectionStringError as exc:
            raise ValueError(str(exc)) from None
        return SecretStr(parsed.raw)


class ProducerSettings(KafkaSettings):
    """The producer's own settings on top of the shared ones."""

    rate: float = env(
        "PRODUCER_RATE",
        description="Messages per second; 0 sends as fast as the client can (batching on)",
        default=10.0,
        ge=0,
    )
    message_size: int = env(
        "PRODUCER_MESSAGE_SIZE",
        description="Bytes per message value (padded JSON; at least the envelope's size)",
        default=100,
        ge=1,
        le=eventhubs.MAX_REQUEST_SIZE - 1_000,
    )
    compression_type: Compression = env(
        "KAFKA_COMPRESSION_TYPE",
        description="none, gzip, snappy, lz4 or zstd (Event Hubs takes none or gzip)",
        default="none",
    )
    eventhubs_tier: Tier | None = env(
        "EVENTHUBS_TIER",
        description="The Event Hubs namespace's tier: standard, premium or dedicated; "
        "compressed batches need premium or dedicated",
        default=None,
    )
    linger_ms: int = env(
        "KAFKA_LINGER_MS",
        description="How long the producer waits to fill a batch, in milliseconds",
        default=5,
        ge=0,
    )
    delivery_timeout_ms: int = env(
        "KAFKA_DELIVERY_TIMEOUT_MS",
        description="How long a message may wait and be retried (broker down, leader "
        "moving) before it counts as failed",
        default=120_000,
        ge=1_000,
    )

    request_timeout_ms: int | None = env(
        "KAFKA_REQUEST_TIMEOUT_MS",
        description="How long the producer waits for the broker to answer one request "
        "before retrying it; default 30000 (60000 for Event Hubs, which takes no less "
        "from the idempotent producer)",
        default=None,
        ge=1_000,
    )
    source: str | None = env(
        "PRODUCER_SOURCE",
        description="Where records come from: stdin-json (a JSON object a line), stdin-text "
        "(a value a line), or package.module:name (an iterable, or a callable of none that "
        "returns one); the producer exits when it ends; default: numbered envelopes "
        "(docs/sources.md)",
        default=None,
    )

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str | None) -> str | None:
        if value is not None and ":" in value and not _IMPORT_STRING.match(value):
            raise ValueError("is not package.module:name (for example myapp.events:generate)")
        return value


class ConsumerSettings(KafkaSettings):
    """The consumer's own settings on top of the shared ones."""

    # Required: ``resolve`` says so when it is missing, together with the
    # bootstrap servers and topic, so one run names every missing variable.
    group_id: str | None = env(
        "KAFKA_GROUP_ID",
        "EVENTHUBS_CONSUMER_GROUPID",
        description="Consumer group id; consumers with the same id share the partitions",
        default=None,
        min_length=1,
    )
    auto_offset_reset: Literal["earliest", "latest"] = env(
        "KAFKA_AUTO_OFFSET_RESET",
        description="Where a group with no committed offset starts: earliest or latest",
        default="earliest",
    )
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects.
    assignment_strategy: Annotated[tuple[AssignmentStrategy, ...], NoDecode] = env(
        "KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
        description="Assignors in order of preference, comma-separated: sticky, "
        "cooperative-sticky, range, roundrobin. The group uses the first one every member "
        "lists: sticky among our consumers (the shortest pause on scale-out we measured), "
        "range beside the Java client, librdkafka or Sarama on their defaults",
        default=("sticky", "range"),
        min_length=1,
    )
    session_timeout_ms: int = env(
        "KAFKA_SESSION_TIMEOUT_MS",
        description="How long the group waits for a silent consumer before moving its "
        "partitions (Event Hubs: 30000 recommended)",
        default=30_000,
        ge=1_000,
    )
    heartbeat_interval_ms: int = env(
        "KAFKA_HEARTBEAT_INTERVAL_MS",
        description="How often the consumer tells the group it is alive; a consumer "
        "learns of a rebalance on its next heartbeat, so this bounds how soon "
        "partitions move when a consumer joins or leaves; default 500 (3000 for "
        "Event Hubs, as Microsoft asks)",
        default=500,
        ge=100,
    )
    max_poll_records: int = env(
        "KAFKA_MAX_POLL_RECORDS",
        description="Most messages one poll hands the consumer",
        default=500,
        ge=1,
    )
    commit_interval_ms: int = env(
        "KAFKA_COMMIT_INTERVAL_MS",
        description="Longest processed offsets wait before they are committed; a consumer "
        "that crashes leaves at most this much to be processed again (0: after every poll). "
        "Rebalances and clean stops commit at once; Event Hubs: "
        f"{eventhubs.MIN_COMMIT_INTERVAL_MS} or more (4 commits a second per partition), "
        f"{eventhubs.COMMIT_INTERVAL_MS} by default",
        default=100,
        ge=0,
    )
    max_poll_interval_ms: int = env(
        "KAFKA_MAX_POLL_INTERVAL_MS",
        description="Longest the consumer may go between two polls before the group "
        "moves its partitions; a batch is cut short at half of it",
        default=300_000,
        ge=1_000,
    )
    handler: str | None = env(
        "CONSUMER_HANDLER",
        description="Your code for each record, as package.module:name: a function of one "
        "record, or a factory (of none) of one, or of a context manager that gives one; "
        "default: log each record (docs/handlers.md)",
        default=None,
    )
    retry_attempts: int = env(
        "CONSUMER_RETRY_ATTEMPTS",
        description="Calls of the handler for one record before it is given up on "
        "(1: no retry); DependencyUnavailable is retried until it works",
        default=3,
        ge=1,
    )
    retry_backoff_ms: int = env(
        "CONSUMER_RETRY_BACKOFF_MS",
        description="Wait before a record's first retry; doubled for each one after, "
        "with a little jitter; its partition is paused meanwhile",
        default=1_000,
        ge=1,
    )
    retry_backoff_max_ms: int = env(
        "CONSUMER_RETRY_BACKOFF_MAX_MS",
        description="Longest wait between two tries of one record",
        default=30_000,
        ge=1,
    )
    ordering: Literal["partition", "key", "unordered"] = env(
        "CONSUMER_ORDERING",
        description="Which records the handler may have side by side: partition (one "
        "record of a partition at a time, in offset order), key (one record of a key at "
        "a time, in offset order; a record without a key waits for its partition's "
        "keyless ones before it), or unordered (any); docs/handlers.md",
        default="partition",
    )
    max_in_flight: int = env(
        "CONSUMER_MAX_IN_FLIGHT",
        description="In key or unordered order, or with an async handler: most records "
        "the handler has at once; at most 64 times as many are taken past the committed "
        "offsets, and fetching pauses there",
        default=64,
        ge=1,
    )
    drain_timeout_ms: int = env(
        "CONSUMER_DRAIN_TIMEOUT_MS",
        description="Longest a stop or a revoked partition waits for the records it took "
        "to be handled, so their offsets are committed before it goes; within Docker's "
        "10 s stop",
        default=8_000,
        ge=0,
    )
    batch_max_records: int = env(
        "CONSUMER_BATCH_MAX_RECORDS",
        description="With a batch handler (@consumer.handler.batch): most records of one "
        "partition in one call",
        default=500,
        ge=1,
    )
    batch_max_wait_ms: int = env(
        "CONSUMER_BATCH_MAX_WAIT_MS",
        description="With a batch handler: longest a batch waits for more records before "
        "it is handled short (0: the records one poll brought)",
        default=0,
        ge=0,
    )
    dead_letter_topic: str | None = env(
        "CONSUMER_DEAD_LETTER_TOPIC",
        description="Topic (event hub) for records the handler gave up on, with headers "
        "saying why; it must exist. Unset: the consumer stops on such a record (exit 1)",
        default=None,
        min_length=1,
        max_length=249,
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = env(
        "CONSUMER_PROCESSING_GUARANTEE",
        description="at_least_once, or exactly_once: the handler's outputs and the input "
        "offsets in one Kafka transaction, the input read read_committed; needs partition "
        "order and a plain handler of one record; on Event Hubs, a Premium or Dedicated "
        "namespace (docs/handlers.md)",
        default="at_least_once",
    )
    output_topic: str | None = env(
        "CONSUMER_OUTPUT_TOPIC",
        description="Topic (event hub) for the records the handler returns without a "
        "topic of their own (consumer.handler.Output); it must exist, and is never created",
        default=None,
        min_length=1,
        max_length=249,
    )
    simulated_work_ms: float = env(
        "CONSUMER_SIMULATED_WORK_MS",
        description="Pretend work per message, in milliseconds, to watch slow processing, "
        "lag and batch cutting; 0 in real use",
        default=0.0,
        ge=0,
    )

    @field_validator("handler")
    @classmethod
    def _check_handler(cls, value: str | None) -> str | None:
        if value is not None and not _IMPORT_STRING.match(value):
            raise ValueError("is not package.module:name (for example myapp.handlers:handle)")
        return value

    @field_validator("dead_letter_topic", "output_topic")
    @classmethod
    def _check_dead_letter_topic(cls, value: str | None) -> str | None:
        return KafkaSettings._check_topic(value)

    @field_validator("assignment_strategy", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
        if len(set(names)) != len(names):
            raise ValueError("lists an assignor twice")
        return names
