"""A throwaway CA and a server certificate, so that clients verify TLS for real."""

from __future__ import annotations

from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

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
