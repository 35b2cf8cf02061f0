"""Azure Event Hubs' Kafka endpoint: its connection strings and client rules.

Event Hubs speaks Kafka on port 9093 of the namespace host, over SASL_SSL with
mechanism PLAIN, user name ``$ConnectionString`` and the namespace (or event
hub) connection string as the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KAFKA_PORT = 9093
SASL_USERNAME = "$ConnectionString"
SASL_MECHANISM = "PLAIN"
SECURITY_PROTOCOL = "SASL_SSL"

#: Microsoft's recommended client settings (apache-kafka-configurations.md).
#: Azure's load balancers drop a TCP connection idle for 240 s: close it and
#: refresh metadata before that.
METADATA_MAX_AGE_MS = 180_000
CONNECTIONS_MAX_IDLE_MS = 180_000
#: Over 20000, and at least 60000 with the idempotent producer.
REQUEST_TIMEOUT_MS = 60_000
#: "Don't change this value" (Microsoft): the group's heartbeat on Event Hubs.
HEARTBEAT_INTERVAL_MS = 3_000
#: Tiers whose namespaces take compressed batches (gzip only); Standard refuses them.
COMPRESSING_TIERS = frozenset({"premium", "dedicated"})
#: Below MAX_REQUEST_BYTES, the largest request Event Hubs takes before
#: closing the connection.
MAX_REQUEST_SIZE = 1_000_000
MAX_REQUEST_BYTES = 1_046_528
#: session.timeout.ms values Event Hubs accepts (30000 recommended, our default).
SESSION_TIMEOUT_RANGE_MS = (6_000, 300_000)
#: Event Hubs takes at most 4 offset commits per second per partition.
MIN_COMMIT_INTERVAL_MS = 250
#: How often the consumer commits on Event Hubs unless told: under the limit with
#: room to spare. Sent 250 ms apart, the commits reached the Event Hubs front
#: (tests/test_commits.py) 5 within one second once, by jitter alone.
COMMIT_INTERVAL_MS = 300
#: The longest consumer group id Event Hubs takes.
MAX_GROUP_ID_LENGTH = 256
#: Compression codecs Event Hubs' Kafka endpoint accepts.
SUPPORTED_COMPRESSION = frozenset({"none", "gzip"})
#: Namespace host names in Azure's public and sovereign clouds.
DOMAINS = (
    ".servicebus.windows.net",
    ".servicebus.chinacloudapi.cn",
    ".servicebus.usgovcloudapi.net",
)

_HOST = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]+$")


def is_namespace(name: str) -> bool:
    """Whether *name* is a namespace's name (``contoso``) or host name in any Azure cloud."""
    if "." not in name:
        return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]", name))
    return bool(_HOST.match(name)) and name.lower().endswith(DOMAINS)


def namespace_host(name: str) -> str:
    """The host name of namespace *name*: ``contoso`` is in Azure's public cloud."""
    return (name if "." in name else f"{name}{DOMAINS[0]}").lower()


def is_eventhubs_host(server: str) -> bool:
    """Whether *server* (``host:port``) is an Event Hubs namespace, in any Azure cloud."""
    return server.rsplit(":", 1)[0].lower().endswith(DOMAINS)


class ConnectionStringError(ValueError):
    """A connection string that cannot be used; the message never quotes the key."""


@dataclass(frozen=True, repr=False)
class ConnectionString:
    """The parts of an Event Hubs connection string that matter to a Kafka client."""

    host: str
    entity_path: str | None
    raw: str

    def __repr__(self) -> str:
        # The raw string holds the key: keep it out of reprs and tracebacks.
        return f"ConnectionString(host={self.host!r}, entity_path={self.entity_path!r})"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{KAFKA_PORT}"


def parse_connection_string(text: str) -> ConnectionString:
    """Parse a connection string as people paste it from the Azure portal.

    Surrounding white space and quotes are dropped, key names are matched
    without regard to case, and an ``Endpoint`` with or without its trailing
    slash is accepted. ``SharedAccessKeyName`` with ``SharedAccessKey`` must be
    present: the Kafka endpoint takes no SAS token (``SharedAccessSignature``).
    """
    cleaned = text.strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1].strip()
    if not cleaned:
        raise ConnectionStringError("is empty")

    parts: dict[str, str] = {}
    for segment in (part.strip() for part in cleaned.split(";")):
        if not segment:
            continue
        name, sep, value = segment.partition("=")
        if not sep:
            raise ConnectionStringError(
                f"has a part without '=' ({_safe_name(name)}); expected Name=Value pairs "
                "separated by ';'"
            )
        parts[name.strip().lower()] = value.strip()

    endpoint = parts.get("endpoint")
    if not endpoint:
        raise ConnectionStringError("has no Endpoint=sb://<namespace>.servicebus.windows.net/")
    match = re.fullmatch(r"sb://([^/:]+)(:\d+)?/?", endpoint, flags=re.IGNORECASE)
    if not match or not _HOST.match(match.group(1)):
        raise ConnectionStringError(
            "has an Endpoint that is not sb://<namespace>.servicebus.windows.net/"
        )

    if "sharedaccesssignature" in parts:
        # Accepted by other Event Hubs clients; the Kafka endpoint refuses it.
        raise ConnectionStringError(
            "holds a SharedAccessSignature (a SAS token), which Event Hubs' Kafka endpoint "
            "does not accept: use a connection string with SharedAccessKeyName and "
            "SharedAccessKey, or EVENTHUBS_NAMESPACE to sign in with Microsoft Entra ID"
        )
    missing = [
        name for name in ("SharedAccessKeyName", "SharedAccessKey") if not parts.get(name.lower())
    ]
    if missing:
        raise ConnectionStringError(f"has no {' or '.join(missing)}")
    return ConnectionString(
        host=match.group(1).lower(),
        entity_path=parts.get("entitypath") or None,
        raw=cleaned,
    )


def _safe_name(name: str) -> str:
    # A part without '=' may be a stray piece of the key: show only its length.
    return f"{len(name.strip())} characters"
