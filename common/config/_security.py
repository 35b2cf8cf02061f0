"""How a client proves who it is and whom it talks to: one value, resolved once.

Each variant knows its ``security_protocol``; ``resolve`` turns settings into
one of them, and the client arguments are read off it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from common import eventhubs
from common.entra import EntraTokens

SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class Plaintext:
    """No TLS, no authentication: a local or private broker."""

    security_protocol: Literal["PLAINTEXT"] = "PLAINTEXT"


@dataclass(frozen=True)
class Tls:
    """TLS to the broker, verified against *cafile* (or the system's CAs) unless told not to."""

    context: ssl.SSLContext = field(compare=False)
    cafile: Path | None
    verify: bool
    security_protocol: Literal["SSL"] = "SSL"


@dataclass(frozen=True)
class Sasl:
    """SASL PLAIN or SCRAM, over TLS when *tls* is set."""

    mechanism: SaslMechanism
    username: str
    password: SecretStr
    tls: Tls | None

    @property
    def security_protocol(self) -> Literal["SASL_PLAINTEXT", "SASL_SSL"]:
        return "SASL_PLAINTEXT" if self.tls is None else "SASL_SSL"


@dataclass(frozen=True)
class EventHubsKey:
    """Event Hubs by connection string: SASL PLAIN over TLS, user ``$ConnectionString``."""

    connection_string: eventhubs.ConnectionString
    tls: Tls
    security_protocol: Literal["SASL_SSL"] = "SASL_SSL"

    @property
    def sasl(self) -> Sasl:
        return Sasl(
            mechanism="PLAIN",
            username=eventhubs.SASL_USERNAME,
            password=SecretStr(self.connection_string.raw),
            tls=self.tls,
        )


@dataclass(frozen=True)
class EventHubsEntra:
    """Event Hubs by Microsoft Entra ID: SASL OAUTHBEARER over TLS, tokens from azure-identity.

    No key anywhere: the identity the service runs as (managed identity,
    workload identity, a developer's Azure CLI) needs the role Azure Event
    Hubs Data Sender (producer) or Data Receiver (consumer) on the namespace.
    """

    namespace: str
    tls: Tls
    tokens: EntraTokens = field(compare=False)
    security_protocol: Literal["SASL_SSL"] = "SASL_SSL"


Security = Plaintext | Tls | Sasl | EventHubsKey | EventHubsEntra


def tls_context(cafile: Path | None, verify: bool) -> ssl.SSLContext:
    """A context that verifies the broker's certificate and name, unless *verify* is False.

    Raises ssl.SSLError or OSError when *cafile* holds no usable certificate.
    """
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
