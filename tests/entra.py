"""A stand-in for Microsoft Entra ID on loopback: RS256 tokens, served the way Azure's
managed identity serves them, so that azure-identity's real code fetches them.

The broker validates the tokens with Kafka's own validator against the JWKS
localkafka wrote; the signing key is its private half.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import localkafka


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(
    signing_key: Path,
    audience: str,
    lifetime_s: float,
    *,
    issued_at: float | None = None,
    issuer: str = localkafka.OAUTH_ISSUER,
) -> str:
    """An RS256 JWT with the claims Entra ID puts in an Event Hubs token."""
    key = serialization.load_pem_private_key(signing_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = time.time() if issued_at is None else issued_at
    header = {"alg": "RS256", "typ": "JWT", "kid": localkafka.OAUTH_KEY_ID}
    claims = {
        "aud": audience,
        "iss": issuer,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now + lifetime_s),
        "sub": "managed-identity-of-the-tests",
        "oid": "11111111-2222-4333-8444-555555555555",
        "roles": ["Azure Event Hubs Data Owner"],
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


@dataclass
class TokenService:
    """App Service's managed identity endpoint (``IDENTITY_ENDPOINT``), on loopback.

    azure-identity's ManagedIdentityCredential asks it ``GET ?api-version=
    2019-08-01&resource=...`` with the ``X-IDENTITY-HEADER`` secret. What it
    answers is set per test: the token's lifetime, its audience, or a failure.
    """

    signing_key: Path
    lifetime_s: float = 3600
    #: None: the audience azure-identity asked for (the right one).
    audience: str | None = None
    #: An answer in the past: a token that is already expired when it arrives.
    issued_ago_s: float = 0
    #: Non-zero: answer every request with this HTTP status instead of a token.
    fail_with: int = 0
    header: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    issued: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                resource = query.get("resource", [""])[0]
                if self.headers.get("X-IDENTITY-HEADER") != service.header:
                    self._answer(401, {"error": "wrong identity header"})
                    return
                if service.fail_with:
                    self._answer(service.fail_with, {"error": "identity not found"})
                    return
                service.resources.append(resource)
                audience = service.audience or resource.removesuffix("/.default")
                issued_at = time.time() - service.issued_ago_s
                token = mint(service.signing_key, audience, service.lifetime_s, issued_at=issued_at)
                service.issued.append(token)
                self._answer(
                    200,
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time() + service.lifetime_s)),
                        "resource": resource,
                        "token_type": "Bearer",
                        "client_id": "11111111-2222-4333-8444-555555555555",
                    },
                )

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def environment(self) -> dict[str, str]:
        """What points azure-identity at this endpoint, and at nothing else."""
        assert self._server is not None
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self._server.server_port}/msi/token",
            "IDENTITY_HEADER": self.header,
            # Only the managed identity credential: no Azure CLI, no IMDS probe.
            "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
