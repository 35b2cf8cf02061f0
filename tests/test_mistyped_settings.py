"""A misspelt variable is named at start, with the one it probably meant, and the service
starts all the same; settings that contradict each other so that they cannot work (an
Event Hubs connection string with another cluster's bootstrap servers) are one line and
exit 2, before anything connects."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from common.config import ConsumerSettings, load, resolve
from tests.conftest import REPO
from tests.offline import NO_BROKER, run

KEY = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY="
CONNECTION_STRING = (
    "Endpoint=sb://contoso.servicebus.windows.net/;"
    f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={KEY}"
)


def _start_lines(module: str, **env: str) -> list[dict[str, Any]]:
    """The service's lines up to service.started; then it is stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env={"PATH": os.environ["PATH"], "LOG_FORMAT": "json", **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    try:
        for text in process.stdout:
            lines.append(json.loads(text))
            if lines[-1]["event"] == "service.started":
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert lines, "the service wrote nothing"
    assert lines[-1]["event"] == "service.started", lines
    return lines


def _unread(lines: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(x["variable"], x["did_you_mean"]) for x in lines if x["event"] == "setting.unread"]


def test_a_misspelt_name_is_named_with_what_it_probably_meant() -> None:
    lines = _start_lines(
        "consumer",
        **NO_BROKER,
        CONSUMER_DEADLETTER_TOPIC="orders.dlt",
        KAFKA_BOOTSTRAP_SERVER="elsewhere:9092",
        CONSUMER_WHATEVER="1",
    )
    assert _unread(lines) == [
        ("CONSUMER_DEADLETTER_TOPIC", "CONSUMER_DEAD_LETTER_TOPIC"),
        ("CONSUMER_WHATEVER", None),
        ("KAFKA_BOOTSTRAP_SERVER", "KAFKA_BOOTSTRAP_SERVERS"),
    ]
    # Never a value: what the variable holds may be a secret.
    assert "orders.dlt" not in json.dumps(lines)


def test_what_is_not_a_mistake_is_not_named() -> None:
    lines = _start_lines(
        "producer",
        **NO_BROKER,
        # The consumer's settings in a shared .env, a secret given as a file, and what
        # Kubernetes sets for a Service named kafka.
        CONSUMER_HANDLER="myapp:handle",
        KAFKA_SASL_PASSWORD_FILE="",
        KAFKA_PORT="tcp://10.0.0.1:9092",
        KAFKA_SERVICE_HOST="10.0.0.1",
        KAFKA_PORT_9092_TCP_ADDR="10.0.0.1",
        # Not our prefixes.
        OTEL_SERVICE_NAME="orders",
        SINK_DATABASE_URL="postgresql://localhost/sink",
    )
    assert _unread(lines) == []


@pytest.mark.parametrize("module", ["producer", "consumer"])
def test_the_local_kafka_left_beside_an_event_hubs_connection_string_is_refused(
    module: str,
) -> None:
    """.env.example's KAFKA_BOOTSTRAP_SERVERS, not emptied as it says: the services would
    try TLS to the local broker and loop on a failed handshake."""
    result = run(
        module,
        KAFKA_BOOTSTRAP_SERVERS="kafka:19092",
        EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
        EVENTHUBS_TOPIC="testhub",
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [
        "  KAFKA_BOOTSTRAP_SERVERS (or EVENTHUBS_BROKER)=kafka:19092 is not the connection "
        "string's namespace contoso.servicebus.windows.net, whose certificate is for its own "
        "name: unset it (the namespace is used), or name the namespace"
    ]
    assert KEY not in result.stdout + result.stderr
    assert result.stdout == ""
    print(result.stderr)


@pytest.mark.parametrize(
    "where",
    [
        {"EVENTHUBS_BROKER": "contoso.servicebus.windows.net:9093"},
        # Any bundle: the proxy's CA, as far as the plan can tell.
        {
            "EVENTHUBS_BROKER": "127.0.0.1:19093",
            "KAFKA_SSL_CAFILE": ssl.get_default_verify_paths().openssl_cafile,
        },
    ],
    ids=["the namespace", "a proxy with its own CA"],
)
def test_the_namespace_itself_and_a_proxy_with_its_own_ca_are_taken(
    environ: Callable[..., None], where: dict[str, str]
) -> None:
    environ(
        EVENTHUBS_CONNECTION_STRING=CONNECTION_STRING,
        EVENTHUBS_TOPIC="testhub",
        KAFKA_GROUP_ID="g",
        **where,
    )
    plan = resolve(load(ConsumerSettings))
    assert plan.connection.bootstrap_servers == (where["EVENTHUBS_BROKER"],)
