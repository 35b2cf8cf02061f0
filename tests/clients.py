"""Clients of Kafka that nobody here wrote, run the way their users run them.

kcat (librdkafka), Kafka's own Java console tools (from the jars localkafka
resolves) and a small Go program on Sarama that does what the walkthrough's
producer and consumer do (tests/sarama). A test where our producer feeds our
consumer proves little; these are the counterparts that prove the rest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localkafka.jars import ensure_jars, java_executable

REPO = Path(__file__).resolve().parent.parent
SARAMA_SOURCE = REPO / "tests" / "sarama"
SARAMA_BINARY = REPO / "build" / "sarama-walkthrough"

CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"


class ClientMissing(RuntimeError):
    """A foreign client is not installed; the message says how to get it."""


def _checked(command: Sequence[str], stdin: bytes | None, timeout: float) -> str:
    result = subprocess.run(
        list(command), input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[0]} exited {result.returncode}: "
            f"{result.stderr.decode(errors='replace')[-2000:]}"
        )
    # kcat -J writes a binary payload raw: keep its bytes as surrogates, not escapes.
    return result.stdout.decode(errors="surrogateescape")


def kcat_command(bootstrap: str, *arguments: str) -> list[str]:
    """``kcat -b BOOTSTRAP ARGUMENTS``; raises ClientMissing when kcat is not installed."""
    kcat = shutil.which("kcat")
    if kcat is None:
        raise ClientMissing("kcat is missing: apt-get install kcat (make test installs it as root)")
    return [kcat, "-b", bootstrap, *arguments]


def kcat(bootstrap: str, *arguments: str, stdin: bytes | None = None) -> str:
    """Run kcat to the end; its stdout."""
    return _checked(kcat_command(bootstrap, *arguments), stdin, timeout=60)


def read_all(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record in *topic*, read by kcat from the start to the end, as kcat's JSON."""
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-J", "-q")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def java_command(tool: str, *arguments: str) -> list[str]:
    """A Kafka tool class (ConsoleProducer, ConsoleConsumer...) from Kafka's own jars."""
    return [java_executable(), "-Xmx256m", "-cp", f"{ensure_jars()}/*", tool, *arguments]


def java(tool: str, *arguments: str, stdin: bytes | None = None) -> str:
    """Run a Kafka tool to the end; its stdout."""
    return _checked(java_command(tool, *arguments), stdin, timeout=120)


def console_records(out: str) -> list[tuple[int, int, str, str]]:
    """(partition, offset, key, value) from ConsoleConsumer's ``print.partition/offset/key``."""
    records = []
    for line in out.splitlines():
        if line.startswith("Partition:"):
            partition, offset, key, value = line.split("\t", 3)
            records.append((int(partition.split(":")[1]), int(offset.split(":")[1]), key, value))
    return records


#: ASCII's record separator: in no header, key or value of the tests.
_RECORD_SEPARATOR = "\x1e"


def console_read(
    bootstrap: str, topic: str, count: int, *options: str
) -> list[tuple[str, str, str]]:
    """(headers, key, value) of *topic*'s first *count* records, as Kafka's console consumer
    prints them: headers as ``name:value`` joined by ``|``. Records are cut at a separator
    of their own, not a newline: a header may hold several lines (a dead letter's traceback).
    *options* go to the console consumer (``--isolation-level read_committed``, say)."""
    out = java(
        CONSOLE_CONSUMER,
        *options,
        "--bootstrap-server", bootstrap,
        "--topic", topic,
        "--from-beginning",
        "--max-messages", str(count),
        "--timeout-ms", "30000",
        "--property", "print.headers=true",
        "--property", "print.key=true",
        "--property", "headers.separator=|",
        "--property", f"line.separator={_RECORD_SEPARATOR}",
    )  # fmt: skip
    records = []
    for line in out.split(_RECORD_SEPARATOR)[:-1]:
        headers, key, value = line.split("\t", 2)
        records.append((headers, key, value))
    return records


def console_read_letters(bootstrap: str, topic: str, count: int) -> list[dict[str, str]]:
    """*topic*'s first *count* records as Kafka's console consumer prints them: each its
    headers by name, with ``key`` and ``value``."""
    return [
        {**dict(h.split(":", 1) for h in headers.split("|")), "key": key, "value": value}
        for headers, key, value in console_read(bootstrap, topic, count)
    ]


CONSOLE_PRINT = (
    "--property",
    "print.partition=true",
    "--property",
    "print.offset=true",
    "--property",
    "print.key=true",
)


def sarama_binary() -> Path:
    """Build tests/sarama with the Go toolchain (its modules from the Go module proxy)."""
    go = shutil.which("go")
    if go is None:
        raise ClientMissing("go is missing: the Sarama client is built with the Go toolchain")
    SARAMA_BINARY.parent.mkdir(exist_ok=True)
    result = subprocess.run(
        [go, "build", "-o", str(SARAMA_BINARY), "."],
        cwd=SARAMA_SOURCE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go build of tests/sarama failed: {result.stderr[-2000:]}")
    return SARAMA_BINARY


CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def group_lag(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """(topic, partition) → lag of *group*, as Kafka's kafka-consumer-groups tool
    reports it (``--describe``: LOG-END-OFFSET minus CURRENT-OFFSET)."""
    out = java(CONSUMER_GROUPS, "--bootstrap-server", bootstrap, "--describe", "--group", group)
    lag = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0] == group and fields[2].isdigit():
            lag[(fields[1], int(fields[2]))] = int(fields[5])
    return lag


class Feed:
    """Numbered records written by kcat, keyed by one of *keys* keys: the value is the number."""

    def __init__(self, bootstrap: str, topic: str, keys: int = 40) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._keys = keys
        self.sent = 0

    def more(self, count: int) -> None:
        numbers = range(self.sent, self.sent + count)
        lines = "".join(f"k{n % self._keys}:{n}\n" for n in numbers)
        kcat(self._bootstrap, "-P", "-t", self._topic, "-K:", stdin=lines.encode())
        self.sent += count

    def one(self, key: str, value: str) -> None:
        kcat(self._bootstrap, "-P", "-t", self._topic, "-K:", stdin=f"{key}:{value}\n".encode())
