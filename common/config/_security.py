"""How a client proves who it is and whom it talks to: one value, resolved once.

Each variant owns what follows from it: the kafka-python arguments it needs
(``client_args``), the secret values the log redactor must hide
(``secrets``), and whether the broker's certificate is checked
(``verifies_tls``). ``resolve`` picks the variant; nothing else unwraps it.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from common import eventhubs
from common.config._kafka_args import SaslMechanism, SecurityArgs
from common.entra import EntraTokens


@dataclass(frozen=True)
class Plaintext:
    """No TLS, no authentication: a local or private broker."""

    security_protocol: Literal["PLAINTEXT"] = "PLAINTEXT"
    #: Nothing to verify; no warning is due.
    verifies_tls = True

    def client_args(self) -> SecurityArgs:
        return {"security_protocol": self.security_protocol}

    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Tls:
    """TLS to the broker, verified against *cafile* (or the system's CAs) unless told not to."""

    context: ssl.SSLContext = field(compare=False)
    cafile: Path | None
    verify: bool
    security_protocol: Literal["SSL"] = "SSL"

    @property
    def verifies_tls(self) -> bool:
        return self.verify

    def client_args(self) -> SecurityArgs:
        return {"security_protocol": self.security_protocol, "ssl_context": self.context}

    def secrets(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Sasl:
    """SASL PLAIN or SCRAM, over TLS when *tls* is set; never OAUTHBEARER (that is Entra ID)."""

    mechanism: SaslMechanism
    username: str
    password: SecretStr
    tls: Tls | None

    @property
    def security_protocol(self) -> Literal["SASL_PLAINTEXT", "SASL_SSL"]:
        return "SASL_PLAINTEXT" if self.tls is None else "SASL_SSL"

    @property
    def verifies_tls(self) -> bool:
        return self.tls is None or self.tls.verify

    def client_args(self) -> SecurityArgs:
        args: SecurityArgs = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password.get_secret_value(),
        }
        if self.tls is not None:
            args["ssl_context"] = self.tls.context
        return args

    def secrets(self) -> tuple[str, ...]:
        return (self.password.get_secret_value(),)


@dataclass(frozen=True)
class EventHubsKey:
    """Event Hubs by connection string: SASL PLAIN over TLS, user ``$ConnectionString``."""

    connection_string: eventhubs.ConnectionString
    tls: Tls
    security_protocol: Literal["SASL_SSL"] = "SASL_SSL"

    @property
    def verifies_tls(self) -> bool:
        return self.tls.verify

    @property
    def sasl(self) -> Sasl:
        return Sasl(
            mechanism="PLAIN",
            username=eventhubs.SASL_USERNAME,
            password=SecretStr(self.connection_string.raw),
            tls=self.tls,
        )

    def client_args(self) -> SecurityArgs:
        return self.sasl.client_args()

    def secrets(self) -> tuple[str, ...]:
        raw = self.connection_string.raw
        # The key alone can leak too, e.g. inside an error that quotes part of the string.
        key = re.search(r"SharedAccessKey=([^;]+)", raw, flags=re.IGNORECASE)
        return (raw, key.group(1).strip()) if key else (raw,)


@dataclass(frozen=True)
class EventHubsEntra:
    """Event Hubs by Microsoft Entra ID: SASL OAUTHBEARER over TLS, tokens from azure-identity.

    No key anywhere: the identity the service runs as (managed identity,
    workload identity, a developer's Azure CLI) needs the role Azure Event
    Hubs Data Sender (producer) or Data Receiver (consumer) on the namespace.
    Its tokens are hidden by a pattern, not a list: they change every hour.
    """

    namespace: str
    tls: Tls
    tokens: EntraTokens = field(compare=False)
    security_protocol: Literal["SASL_SSL"] = "SASL_SSL"

    @property
    def verifies_tls(self) -> bool:
        return self.tls.verify

    def client_args(self) -> SecurityArgs:
        return {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": self.tokens,
            "ssl_context": self.tls.context,
        }

    def secrets(self) -> tuple[str, ...]:
        return ()


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
