"""Shared fixtures: one real Kafka broker per test run, and fresh topics per test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

import localkafka

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cluster:
    """Where the tests find Kafka: the PLAINTEXT listener, and the SASL_SSL one if any."""

    bootstrap_servers: str
    sasl_ssl: str | None = None
    ca_file: Path | None = None
    connection_string: str | None = None

    def require_sasl_ssl(self) -> tuple[str, Path, str]:
        """The SASL_SSL listener, its CA file and connection string; fail if unknown."""
        if self.sasl_ssl is None or self.ca_file is None or self.connection_string is None:
            pytest.fail(
                "this test needs the Event Hubs style SASL_SSL listener: unset "
                "KAFKA_TEST_BOOTSTRAP_SERVERS to let localkafka start one, or also set "
                "KAFKA_TEST_SASL_SSL_SERVERS, KAFKA_TEST_SSL_CAFILE and "
                "KAFKA_TEST_CONNECTION_STRING",
                pytrace=False,
            )
        return self.sasl_ssl, self.ca_file, self.connection_string


def _external_cluster() -> Cluster | None:
    bootstrap = os.environ.get("KAFKA_TEST_BOOTSTRAP_SERVERS")
    if not bootstrap:
        return None
    ca_file = os.environ.get("KAFKA_TEST_SSL_CAFILE")
    return Cluster(
        bootstrap_servers=bootstrap,
        sasl_ssl=os.environ.get("KAFKA_TEST_SASL_SSL_SERVERS"),
        ca_file=Path(ca_file) if ca_file else None,
        connection_string=os.environ.get("KAFKA_TEST_CONNECTION_STRING"),
    )


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real broker for the whole run: an existing one if named, else localkafka's."""
    if (external := _external_cluster()) is not None:
        yield external
        return
    data_dir = tmp_path_factory.mktemp("localkafka")
    try:
        broker = localkafka.start(data_dir, bind_to_parent=True)
    except localkafka.LocalKafkaError as exc:
        failure = str(exc)
    else:
        failure = ""
    if failure:
        pytest.fail(f"the Kafka broker could not start: {failure}", pytrace=False)
    try:
        yield Cluster(
            bootstrap_servers=broker.plaintext,
            sasl_ssl=broker.sasl_ssl,
            ca_file=broker.ca_file,
            connection_string=broker.connection_string,
        )
    finally:
        localkafka.stop(data_dir)


@pytest.fixture
def new_topic(kafka: Cluster) -> Iterator[Callable[..., str]]:
    """Create topics with a unique name for one test; delete them afterwards."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    created: list[str] = []

    def create(partitions: int = 10) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, partitions, 1)])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            admin.delete_topics(created)
        admin.close()


@pytest.fixture
def roundtrip() -> Callable[..., list[bytes]]:
    """Send *values* to *topic* and read them back with the same client settings."""

    def run(topic: str, values: list[bytes], **client: object) -> list[bytes]:
        producer = KafkaProducer(**client)
        try:
            for value in values:
                producer.send(topic, value).get(timeout=30)
        finally:
            producer.close()
        consumer = KafkaConsumer(
            topic,
            group_id=f"roundtrip-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            consumer_timeout_ms=30_000,
            **client,
        )
        received: list[bytes] = []
        try:
            for message in consumer:
                received.append(message.value)
                if len(received) == len(values):
                    break
        finally:
            consumer.close()
        return received

    return run


class Service:
    """A producer or consumer running as a real process, its JSON log lines collected.

    Every line of stdout is parsed as it arrives and the shared condition is
    notified, so tests wait for log events instead of sleeping.
    """

    def __init__(self, module: str, env: dict[str, str], condition: threading.Condition) -> None:
        self.module = module
        self._condition = condition
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._condition:
                self.raw.append(line)
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    self.lines.append({"event": "<not json>", "line": line})
                self._condition.notify_all()
        with self._condition:
            self._condition.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._condition:
            return [line for line in self.lines if line.get("event") == name]

    def assignment(self) -> dict[str, list[int]] | None:
        """This consumer's partitions as its latest assignment event says."""
        with self._condition:
            changes = [
                line["assignment"]
                for line in self.lines
                if line.get("event")
                in ("partitions.assigned", "partitions.revoked", "partitions.lost")
            ]
        return changes[-1] if changes else None

    @property
    def metrics_port(self) -> int:
        (started,) = self.events("service.started") or [{}]
        return int(started["metrics_port"])

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=10
            ) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self._reader.join(timeout=5)
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()
        return code

    def output(self) -> str:
        with self._condition:
            return "".join(self.raw) + self.stderr


class Services:
    """Starts services against the test broker and awaits conditions on their logs."""

    def __init__(self, kafka: Cluster) -> None:
        self.kafka = kafka
        self.condition = threading.Condition()
        self.started: list[Service] = []

    def env(self, **settings: str) -> dict[str, str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": "0",
            "LOG_FORMAT": "json",
            # Short, so that a consumer killed without LeaveGroup is noticed soon.
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
        }
        env.update(settings)
        return {key: value for key, value in env.items() if value is not None}

    def start(self, module: str, *, clean_env: bool = False, **settings: str) -> Service:
        env = settings if clean_env else self.env(**settings)
        env.setdefault("PATH", os.environ["PATH"])
        service = Service(module, env, self.condition)
        self.started.append(service)
        return service

    def wait_until(self, check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        """Wait for *check* to return something truthy, re-checking on every log line."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while not (result := check()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    tails = "\n".join(
                        f"--- {s.module} (pid {s.process.pid}):\n" + "".join(s.raw[-15:])
                        for s in self.started
                    )
                    raise AssertionError(f"timed out waiting for {what or check}\n{tails}")
                # A log line, or a process exit, wakes us; the timeout bounds the wait.
                self.condition.wait(min(remaining, 1.0))
        return result

    def stop_all(self) -> None:
        for service in self.started:
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait()


@pytest.fixture
def services(kafka: Cluster) -> Iterator[Services]:
    """Run producers and consumers as processes; anything left running is killed."""
    running = Services(kafka)
    try:
        yield running
    finally:
        running.stop_all()


def seqs(service: Service, event: str) -> list[int]:
    """The sequence numbers in *service*'s *event* log lines, in log order."""
    return [line["seq"] for line in service.events(event) if "seq" in line]
