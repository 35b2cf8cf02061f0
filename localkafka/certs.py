"""A throwaway CA and a server certificate, so that clients verify TLS for real;
and a token signing key, so that the broker validates OAUTHBEARER tokens for real."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

#: Names the server certificate is valid for; clients reach the broker by either.
SERVER_NAMES = ("localhost", "127.0.0.1")


def issue(directory: Path) -> tuple[Path, Path]:
    """Write ``ca.pem`` and ``server.pem`` (PKCS#8 key + chain) into *directory*.

    Kafka's PEM keystore reads only PKCS#8 keys, while trustme writes the
    traditional OpenSSL form, hence the re-encoding.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="localkafka test CA")
    leaf = ca.issue_cert(*SERVER_NAMES)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ca_file = directory / "ca.pem"
    server_file = directory / "server.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_file.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    server_file.chmod(0o600)
    return ca_file, server_file


def issue_signing_key(directory: Path, key_id: str) -> tuple[Path, Path]:
    """Write ``jwt-signing-key.pem`` (RSA, PKCS#8) and ``jwks.json`` (its public half).

    The broker validates OAUTHBEARER tokens against the JWKS; the tests sign
    tokens with the private key, as Microsoft Entra ID signs Event Hubs tokens.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key_id,
                "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            }
        ]
    }
    key_file = directory / "jwt-signing-key.pem"
    jwks_file = directory / "jwks.json"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    jwks_file.write_text(json.dumps(jwks))
    return key_file, jwks_file


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
