"""docker-compose.secrets.yml gives the services the Event Hubs connection string as a Docker
secret: read from the file the service's variable names, never in the containers'
environment; a file the image's user cannot read is one line naming the variable."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.compose.project import REPO, Project, wait_until

pytestmark = pytest.mark.compose

KEY = "c2VjcmV0LWluLWEtZG9ja2VyLXNlY3JldA=="
#: A namespace nothing resolves here, and the broker our own kafka container: nothing
#: leaves the project's network. (Its certificate could not be the namespace's, so the
#: run says KAFKA_SSL_VERIFY=false: TLS is never reached, the broker speaks plaintext.)
CONNECTION_STRING = (
    "Endpoint=sb://contoso-test.servicebus.windows.net/;"
    f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}"
)


def _output(compose: Project, container: str) -> str:
    """Everything the container wrote, stderr too (where a settings problem goes)."""
    result = subprocess.run(
        ["docker", "logs", container], env=compose.env, capture_output=True, text=True, check=True
    )
    return result.stdout + result.stderr


def test_the_connection_string_as_a_docker_secret(
    project: Callable[..., Project], tmp_path: Path
) -> None:
    secret = tmp_path / "eventhubs-connection-string"
    secret.write_text(CONNECTION_STRING + "\n")
    secret.chmod(0o600)  # root's alone, as umask 077 leaves it: the image's user cannot read it
    compose = project(
        "KAFKA_BOOTSTRAP_SERVERS=\nKAFKA_TOPIC=\nEVENTHUBS_BROKER=kafka:19092\nKAFKA_SSL_VERIFY=false\n"
        f"EVENTHUBS_TOPIC=testhub\nEVENTHUBS_CONNECTION_STRING_SECRET={secret}\n"
    )
    files = ("-f", str(REPO / "docker-compose.yml"), "-f", str(REPO / "docker-compose.secrets.yml"))
    compose.compose(*files, "up", "--detach", "producer")
    (producer,) = compose.containers("producer")

    refused = wait_until(
        lambda: (
            "EVENTHUBS_CONNECTION_STRING_FILE" in _output(compose, producer)
            and _output(compose, producer)
        ),
        60,
        "the producer refusing a file it cannot read",
    )
    assert (
        "EVENTHUBS_CONNECTION_STRING_FILE: /run/secrets/eventhubs-connection-string cannot be "
        "read (permission denied for uid 10001)"
    ) in refused
    assert compose.inspect(producer)["State"]["ExitCode"] in (0, 2)  # 0: restarting now

    os.chown(secret, 10001, -1)  # what docker-compose.secrets.yml says to do
    started = wait_until(
        lambda: compose.events(producer, "service.started"), 60, "the producer restarted"
    )
    assert started[0]["security_protocol"] == "SASL_SSL"
    assert started[0]["bootstrap_servers"] == "kafka:19092"
    environment = compose.environment(producer)
    assert environment["EVENTHUBS_CONNECTION_STRING_FILE"] == (
        "/run/secrets/eventhubs-connection-string"
    )
    assert KEY not in str(compose.inspect(producer))
    assert KEY not in _output(compose, producer)
    print(f"secret: refused with {refused.strip().splitlines()[-1]!r}, then {started[0]}")
