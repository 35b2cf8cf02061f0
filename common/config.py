"""Settings of both services, read from the environment and validated before any I/O.

Every field names its environment variables explicitly (the first is the one
we document; the rest are the Go/Sarama walkthrough's names, which keep
working). ``load()`` turns every problem into one readable ``ConfigError``.
"""

from __future__ import annotations

import argparse
import re
import socket
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import eventhubs

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
AssignmentStrategy = Literal["sticky", "cooperative-sticky", "range", "roundrobin"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]

#: kafka-python's request.timeout.ms when neither we nor Event Hubs' advice set it.
DEFAULT_REQUEST_TIMEOUT_MS = 30_000

_TOPIC = re.compile(r"^[A-Za-z0-9._-]+$")
_HOST_PORT = re.compile(r"^\[?[A-Za-z0-9.:_-]+\]?:(\d{1,5})$")


def env(*names: str, description: str, **kwargs: Any) -> Any:
    """A settings field read from the environment variables *names*, first one first."""
    return Field(
        validation_alias=AliasChoices(*names),
        description=description,
        json_schema_extra={"env": list(names)},
        **kwargs,
    )


class ConfigError(Exception):
    """Settings that cannot work; ``problems`` has one line per bad or missing variable."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in self.problems))


class KafkaSettings(BaseSettings):
    """What both services need: where Kafka is, how to authenticate, how to report."""

    model_config = SettingsConfigDict(
        # A blank variable, as an .env template leaves it, means "not set".
        env_ignore_empty=True,
        # Values pasted from a portal or a wiki often carry a space or newline.
        str_strip_whitespace=True,
        extra="ignore",
        hide_input_in_errors=True,
    )

    bootstrap_servers: str = env(
        "KAFKA_BOOTSTRAP_SERVERS",
        "EVENTHUBS_BROKER",
        description="Comma-separated host:port list; for Event Hubs <namespace>"
        ".servicebus.windows.net:9093, taken from the connection string when unset",
    )
    topic: str = env(
        "KAFKA_TOPIC",
        "EVENTHUBS_TOPIC",
        description="Topic (event hub) to use; an EntityPath in the connection string sets it",
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
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN for Event Hubs)",
        default="PLAIN",
    )
    sasl_username: str | None = env(
        "KAFKA_SASL_USERNAME",
        description="SASL user name ($ConnectionString for Event Hubs)",
        default=None,
    )
    sasl_password: SecretStr | None = env(
        "KAFKA_SASL_PASSWORD",
        description="SASL password (for Event Hubs, the connection string); never logged",
        default=None,
    )
    eventhubs_connection_string: SecretStr | None = env(
        "EVENTHUBS_CONNECTION_STRING",
        description="Event Hubs namespace connection string; alone it implies SASL_SSL, "
        "PLAIN, user $ConnectionString, the bootstrap servers and, with EntityPath, "
        "the topic; never logged",
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
        description="Address the /metrics, /healthz and /readyz server binds to",
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
    def _check_servers(cls, value: str) -> str:
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
    def _check_topic(cls, value: str) -> str:
        # Kafka's rule for topic names; Event Hubs names fit in it too.
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError(
                "is not a topic name: use letters, digits, '.', '_' and '-' (no spaces)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _derive_from_connection_string(cls, data: Any) -> Any:
        """Fill bootstrap servers and topic from the connection string when unset."""
        if not isinstance(data, dict) or not data.get("EVENTHUBS_CONNECTION_STRING"):
            return data
        try:
            parsed = eventhubs.parse_connection_string(str(data["EVENTHUBS_CONNECTION_STRING"]))
        except eventhubs.ConnectionStringError:
            return data  # reported by the field validator below
        derived = dict(data)
        derived.setdefault("KAFKA_BOOTSTRAP_SERVERS", parsed.bootstrap_servers)
        if parsed.entity_path:
            derived.setdefault("KAFKA_TOPIC", parsed.entity_path)
        return derived

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

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        problems = []
        explicit = self.model_fields_set
        if self.eventhubs_connection_string is not None:
            if "security_protocol" in explicit and self.security_protocol != "SASL_SSL":
                problems.append(
                    f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} cannot reach Event Hubs, "
                    "which needs SASL_SSL; unset it"
                )
            if "sasl_mechanism" in explicit and self.sasl_mechanism != "PLAIN":
                problems.append(
                    f"KAFKA_SASL_MECHANISM={self.sasl_mechanism} is not what Event Hubs takes "
                    "with a connection string; unset it or use PLAIN"
                )
            if "sasl_username" in explicit or "sasl_password" in explicit:
                problems.append(
                    "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD and EVENTHUBS_CONNECTION_STRING "
                    "are both set; set only one"
                )
            if not problems:
                self.security_protocol = "SASL_SSL"
                self.sasl_mechanism = "PLAIN"
                self.sasl_username = eventhubs.SASL_USERNAME
                self.sasl_password = self.eventhubs_connection_string
        elif self.security_protocol.startswith("SASL_"):
            if not self.sasl_username:
                problems.append(f"KAFKA_SASL_USERNAME is missing ({self.security_protocol})")
            if self.sasl_password is None:
                problems.append(f"KAFKA_SASL_PASSWORD is missing ({self.security_protocol})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def is_eventhubs(self) -> bool:
        return self.eventhubs_connection_string is not None or any(
            server.split(":")[0].endswith(".servicebus.windows.net")
            for server in self.bootstrap_servers.split(",")
        )

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor."""
        values = [self.sasl_password, self.eventhubs_connection_string]
        found = [v.get_secret_value() for v in values if v is not None]
        # The key alone can leak too, e.g. inside an error that quotes part of the string.
        for text in list(found):
            match = re.search(r"SharedAccessKey=([^;]+)", text, flags=re.IGNORECASE)
            if match:
                found.append(match.group(1).strip())
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)

    def client_id_for(self, service: str) -> str:
        return self.client_id or f"{service}-{socket.gethostname()}"


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
        le=eventhubs.RECOMMENDED_PRODUCER_SETTINGS["max_request_size"] - 1_000,
    )
    compression_type: Compression = env(
        "KAFKA_COMPRESSION_TYPE",
        description="none, gzip, snappy, lz4 or zstd (Event Hubs takes none or gzip)",
        default="none",
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
        "before retrying it; default 30000 (60000 for Event Hubs)",
        default=None,
        ge=1_000,
    )

    @property
    def effective_request_timeout_ms(self) -> int:
        if self.request_timeout_ms is not None:
            return self.request_timeout_ms
        if self.is_eventhubs:
            return eventhubs.RECOMMENDED_CLIENT_SETTINGS["request_timeout_ms"]
        return DEFAULT_REQUEST_TIMEOUT_MS

    @model_validator(mode="after")
    def _check_eventhubs_producer(self) -> Self:
        if self.is_eventhubs and self.compression_type not in eventhubs.SUPPORTED_COMPRESSION:
            raise ValueError(
                f"KAFKA_COMPRESSION_TYPE={self.compression_type} is not supported by "
                "Event Hubs; use none or gzip"
            )
        return self

    @model_validator(mode="after")
    def _check_delivery_timeout(self) -> Self:
        # kafka-python refuses this too, but only when the client is built.
        least = self.linger_ms + self.effective_request_timeout_ms
        if self.delivery_timeout_ms <= least:
            raise ValueError(
                f"KAFKA_DELIVERY_TIMEOUT_MS={self.delivery_timeout_ms} must be more than "
                f"KAFKA_LINGER_MS + KAFKA_REQUEST_TIMEOUT_MS ({least})"
            )
        return self


class ConsumerSettings(KafkaSettings):
    """The consumer's own settings on top of the shared ones."""

    group_id: str = env(
        "KAFKA_GROUP_ID",
        "EVENTHUBS_CONSUMER_GROUPID",
        description="Consumer group id; consumers with the same id share the partitions",
        min_length=1,
    )
    auto_offset_reset: Literal["earliest", "latest"] = env(
        "KAFKA_AUTO_OFFSET_RESET",
        description="Where a group with no committed offset starts: earliest or latest",
        default="earliest",
    )
    assignment_strategy: AssignmentStrategy = env(
        "KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
        description="sticky, cooperative-sticky, range or roundrobin (sticky: the shortest "
        "pause on scale-out we measured; see README)",
        default="sticky",
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
        "partitions move when a consumer joins or leaves",
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
        "Rebalances and clean stops commit at once",
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
    simulated_work_ms: float = env(
        "CONSUMER_SIMULATED_WORK_MS",
        description="Pretend work per message, in milliseconds, to watch slow processing, "
        "lag and batch cutting; 0 in real use",
        default=0.0,
        ge=0,
    )

    @model_validator(mode="after")
    def _check_heartbeat(self) -> Self:
        # The broker rejects a JoinGroup otherwise; say so before connecting.
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"KAFKA_HEARTBEAT_INTERVAL_MS={self.heartbeat_interval_ms} must be less than "
                f"KAFKA_SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
        return self

    @model_validator(mode="after")
    def _check_eventhubs_consumer(self) -> Self:
        low, high = eventhubs.SESSION_TIMEOUT_RANGE_MS
        if self.is_eventhubs and not low <= self.session_timeout_ms <= high:
            raise ValueError(
                f"KAFKA_SESSION_TIMEOUT_MS={self.session_timeout_ms} is outside what Event Hubs "
                f"accepts ({low} to {high}; 30000 recommended)"
            )
        return self


Settings = TypeVar("Settings", bound=KafkaSettings)


def _env_names(model: type[KafkaSettings]) -> dict[str, list[str]]:
    names = {}
    for field_name, field in model.model_fields.items():
        extra = field.json_schema_extra
        env_list = extra.get("env") if isinstance(extra, dict) else None
        if isinstance(env_list, list):
            names[field_name] = [str(n) for n in env_list]
    return names


def env_variables(model: type[KafkaSettings]) -> list[str]:
    """Every environment variable *model* reads, for docs and the README check."""
    return [name for names in _env_names(model).values() for name in names]


def _describe(model: type[KafkaSettings], error: Mapping[str, Any]) -> list[str]:
    loc = error.get("loc") or ()
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    if not loc:
        return message.splitlines()
    by_primary = {names[0]: names for names in _env_names(model).values()}
    names = by_primary.get(str(loc[0]), [str(loc[0])])
    label = " (or ".join(names) + ")" * (len(names) - 1)
    if error.get("type") == "missing":
        return [f"{label} is missing"]
    if error.get("type") == "string_too_short" and (error.get("ctx") or {}).get("min_length") == 1:
        return [f"{label} is blank"]
    return [f"{label}: {message}"]


def load(model: type[Settings], overrides: Mapping[str, object] | None = None) -> Settings:
    """Validate settings from the environment; *overrides* (command-line flags) win.

    Raises ConfigError naming every bad or missing variable and never quoting a value.
    """
    names = _env_names(model)
    init: dict[str, Any] = {names[field][0]: v for field, v in (overrides or {}).items()}
    try:
        return model(**init)
    except ValidationError as exc:
        problems = [
            line for error in exc.errors(include_input=False) for line in _describe(model, error)
        ]
        raise ConfigError(problems) from None


def argument_parser(
    model: type[KafkaSettings], prog: str, description: str
) -> argparse.ArgumentParser:
    """A --help that lists every setting, its variables and default; flags override."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Every option can also be set by the environment variables named in brackets.",
    )
    for field_name, names in _env_names(model).items():
        field = model.model_fields[field_name]
        default = "" if field.is_required() else f" (default: {field.get_default()!s})"
        if field.annotation is not None and "SecretStr" in str(field.annotation):
            default = ""
        parser.add_argument(
            "--" + field_name.replace("_", "-"),
            dest=field_name,
            metavar=names[0],
            help=f"{field.description}{default} [{', '.join(names)}]",
        )
    return parser


def parse_overrides(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict[str, str]:
    return {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}


__all__ = [
    "ConfigError",
    "ConsumerSettings",
    "KafkaSettings",
    "ProducerSettings",
    "argument_parser",
    "env_variables",
    "load",
    "parse_overrides",
]
