"""Signing in to Event Hubs with Microsoft Entra ID: OAuth tokens from azure-identity.

kafka-python asks its token provider for a token whenever it authenticates a
connection, on its IO thread, and again before the broker's session ends
(KIP-368 re-authentication). A fetch there would stall every connection, so
tokens are fetched ahead of need: once at start, where a credential that
cannot produce one stops the service with one clear line, and then by a
background thread before each token expires.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Protocol

from kafka.net.sasl.oauth import AbstractTokenProvider

from common.failure import ServiceFailed

#: Refresh this long before a token expires (or at half its life, if shorter):
#: Entra ID tokens live 60 to 90 minutes.
REFRESH_MARGIN_S = 300.0
#: After a failed refresh, try again this soon (the current token still works).
RETRY_S = 10.0
#: What azure-identity itself reads, for a user-assigned identity (AZURE_CLIENT_ID),
#: AKS workload identity (all but the last, set by its webhook), or to narrow the
#: credential chain (AZURE_TOKEN_CREDENTIALS, e.g. ManagedIdentityCredential).
AZURE_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
)
#: A JWT, as Entra ID issues them: what the log redactor hides wherever it shows up
#: (kafka-python's DEBUG lines print the SASL exchange).
TOKEN_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


class AccessToken(Protocol):
    """What azure-identity's ``get_token`` returns."""

    @property
    def token(self) -> str: ...
    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    """Any azure-identity credential: DefaultAzureCredential, ManagedIdentityCredential..."""

    def get_token(self, *scopes: str) -> AccessToken: ...


def default_credential() -> TokenCredential:
    """azure-identity's chain: environment, workload identity, managed identity, Azure CLI...

    ``AZURE_CLIENT_ID`` picks a user-assigned identity, ``AZURE_TOKEN_CREDENTIALS``
    narrows the chain (both read by azure-identity itself).
    """
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415  (only when signing in)

    credential: TokenCredential = DefaultAzureCredential()
    return credential


class EntraTokens(AbstractTokenProvider):  # type: ignore[misc]
    """Tokens for one namespace, ``https://<namespace>/.default``, always fresh in the cache."""

    def __init__(
        self,
        namespace_host: str,
        credential: Callable[[], TokenCredential] = default_credential,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scope = f"https://{namespace_host}/.default"
        self._make_credential = credential
        self._credential: TokenCredential | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        #: Called with each new token, so that the log redactor can hide it.
        self.on_token: Callable[[str], None] = lambda _token: None

    def __repr__(self) -> str:
        return f"EntraTokens(scope={self.scope!r})"

    def start(self) -> None:
        """Fetch the first token now, then keep it fresh in the background.

        Raises ServiceFailed when the credential chain cannot produce a token.
        """
        self._fetch()
        self._refresher = threading.Thread(target=self._refresh, name="entra-tokens", daemon=True)
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()

    def token(self) -> str:
        """The current token; kafka-python calls this when it (re-)authenticates."""
        with self._lock:
            current = self._current
        if current is None or current.expires_on <= self._clock():
            current = self._fetch()
        return current.token

    def _fetch(self) -> AccessToken:
        # azure-core is loaded only by a service that signs in with Entra ID.
        from azure.core.exceptions import ClientAuthenticationError  # noqa: PLC0415

        if self._credential is None:
            self._credential = self._make_credential()
        try:
            fresh = self._credential.get_token(self.scope)
        except ClientAuthenticationError as exc:
            raise ServiceFailed("credential_unavailable", _in_one_line(exc)) from None
        with self._lock:
            self._current = fresh
        self.on_token(fresh.token)
        return fresh

    def _refresh(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                current = self._current
            assert current is not None
            left = current.expires_on - self._clock()
            # At least a second apart: azure-identity may hand back its cached token.
            if self._stop.wait(max(1.0, left - min(REFRESH_MARGIN_S, left / 2))):
                return
            try:
                self._fetch()
            except ServiceFailed:
                # The token in hand still works for a while; kafka-python will
                # say so if it does not, and the next try may succeed.
                self._stop.wait(RETRY_S)


def _in_one_line(exc: BaseException) -> str:
    """azure-identity's message, every line of it: each credential it tried, and why it failed.

    The first lines name only the first credentials of the chain; the one
    that mattered (a managed identity endpoint that refused, say) comes later.
    """
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"no token from Microsoft Entra ID: {text}"
