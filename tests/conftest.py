"""Shared fixtures: one real Kafka broker per test run, and fresh topics per test."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client.metrics import MetricWrapperBase

import consumer.metrics
import localkafka
import producer.metrics
from common import message, throttle
from common.clients import install_workarounds
from common.config import ConsumerSettings, ProducerSettings, env_variables
from common.histogram import BatchHistogram
from common.tracing import metrics as tracing_metrics
from harness import ServiceGroup, ServiceProcess, service_env, walkthrough_env
from harness.jaeger import Jaeger
from harness.postgres import PostgresServer
from localkafka import front
from tests import clients, kube
from tests.compose.project import wait_until

T = TypeVar("T")

# The test's own clients reach the Event Hubs front as the services do.
install_workarounds()

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cluster:
    """Where the tests find Kafka: the PLAINTEXT listener, and the SASL_SSL one if any."""

    bootstrap_servers: str
    sasl_ssl: str | None = None
    ca_file: Path | None = None
    connection_string: str | None = None
    #: localkafka's data directory, where its Event Hubs front keeps rules and log.
    data_dir: Path | None = None

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


#: Fixtures that start a server (a broker, PostgreSQL, Jaeger, an API server) or build a
#: client: a test that uses one is marked ``started``, and ``make check`` leaves it out.
STARTING_FIXTURES = frozenset(
    {"kafka", "postgres", "jaeger", "kube_api", "own_broker", "sarama", "kcat_installed"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STARTING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.started)


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


class ManualClock:
    """A clock a test moves by hand: ``clock.now += 5``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def logs() -> Iterator[list[dict[str, object]]]:
    """The lines structlog would write during the test, as dicts, and none written."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set service variables for one test, with every other one of ours unset."""
    for name in set(env_variables(ConsumerSettings)) | set(env_variables(ProducerSettings)):
        monkeypatch.delenv(name, raising=False)

    def set_variables(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_variables


@pytest.fixture(scope="session")
def sarama() -> Path:
    """The Go/Sarama walkthrough client, built once per run."""
    try:
        return clients.sarama_binary()
    except (clients.ClientMissing, RuntimeError) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def kcat_installed() -> None:
    """kcat is there, or the test fails saying how to install it."""
    try:
        clients.kcat_command("localhost:1")
    except clients.ClientMissing as exc:
        pytest.fail(str(exc), pytrace=False)


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
            data_dir=data_dir,
        )
    finally:
        localkafka.stop(data_dir)


class OwnBroker:
    """A broker of one test's own, which the test may stop and restart (same data dir)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.broker = self._start()

    def _start(self) -> localkafka.Broker:
        try:
            return localkafka.start(self.data_dir, bind_to_parent=True)
        except localkafka.LocalKafkaError as exc:
            failure = str(exc)
        pytest.fail(f"the Kafka broker could not start: {failure}", pytrace=False)

    def stop(self) -> None:
        assert localkafka.stop(self.data_dir), "the broker was not running"

    def restart(self) -> None:
        self.broker = self._start()

    @property
    def cluster(self) -> Cluster:
        return Cluster(
            bootstrap_servers=self.broker.plaintext,
            sasl_ssl=self.broker.sasl_ssl,
            ca_file=self.broker.ca_file,
            connection_string=self.broker.connection_string,
            data_dir=self.data_dir,
        )


class EventHubsFront:
    """The rules of localkafka's Event Hubs front for one test, and what it did meanwhile."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._since = time.time()

    def configure(self, **rules: object) -> None:
        """Change the rules for the connections opened from now on."""
        front.configure(self.data_dir, **rules)

    def events(self, event: str) -> list[dict[str, object]]:
        """The front's *event* lines since the test began."""
        return [
            line
            for line in front.read_log(self.data_dir)
            if line["event"] == event and float(str(line["t"])) >= self._since
        ]


@pytest.fixture
def eventhubs_front(kafka: Cluster) -> Iterator[EventHubsFront]:
    """localkafka's Event Hubs front, back to its defaults after the test."""
    if kafka.data_dir is None:
        pytest.fail(
            "this test needs localkafka's Event Hubs front: unset KAFKA_TEST_BOOTSTRAP_SERVERS",
            pytrace=False,
        )
    control = EventHubsFront(kafka.data_dir)
    try:
        yield control
    finally:
        front.Rules().save(kafka.data_dir)


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server of the test's own, on loopback; stopped and removed after."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    """Jaeger v2 on loopback, empty, for one test; it must start (make jaeger builds it)."""
    backend = Jaeger(tmp_path)
    backend.start()
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kube.ApiServer]:
    """A real Kubernetes API server on loopback (build/bin/kubeapi), with the CRDs of
    KEDA and the Prometheus Operator the chart's objects need, established."""
    server = kube.ApiServer(tmp_path_factory.mktemp("kubeapi"))
    server.start()
    try:
        for crd in kube.crds():
            status, answer, _ = server.apply(crd, dry_run=False)
            assert status in (200, 201), answer
        for crd in kube.crds():
            path = f"{server.resource(crd)}/{crd['metadata']['name']}"

            def established(path: str = path) -> bool:
                conditions = server.request("GET", path)[1].get("status", {}).get("conditions", [])
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

            wait_until(established, 60, f"CRD {crd['metadata']['name']} established")
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    """A broker for this test alone, stopped at the end."""
    broker = OwnBroker(tmp_path / "broker")
    try:
        yield broker
    finally:
        localkafka.stop(broker.data_dir)


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
def prefill(kafka: Cluster) -> Callable[..., list[int]]:
    """Put *count* producer envelopes, numbered from 1, into *topic*; return the numbers."""

    def fill(topic: str, count: int, size: int = 100) -> list[int]:
        client = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
        try:
            for seq in range(1, count + 1):
                key, value = message.encode("prefill", seq, message.stamp(datetime.now(UTC)), size)
                client.send(topic, key=key, value=value)
            client.flush(timeout=30)
        finally:
            client.close()
        return list(range(1, count + 1))

    return fill


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


#: What every service in the tests gets on top of the harness' defaults.
TEST_SETTINGS = {
    # Short, so that a consumer killed without LeaveGroup is noticed soon.
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
}


def shared_access_key(connection_string: str) -> str:
    """The key inside an Event Hubs style connection string."""
    return connection_string.split("SharedAccessKey=")[1].split(";", maxsplit=1)[0]


def eventhubs_env(kafka: Cluster, topic: str, group: str = "") -> dict[str, str]:
    """Service settings for *kafka*'s Event Hubs style listener, by the walkthrough's
    variables: SASL_SSL, verified TLS, and the connection string's key in play."""
    address, ca_file, connection_string = kafka.require_sasl_ssl()
    return walkthrough_env(address, connection_string, ca_file, topic, group, **TEST_SETTINGS)


def sasl_ssl_env(kafka: Cluster, topic: str, group: str = "", **settings: str) -> dict[str, str]:
    """SASL_SSL to *kafka*'s Event Hubs style listener, named by address and user, so
    that Apache Kafka's rules apply rather than Event Hubs' (short timeouts allowed)."""
    address, ca_file, connection_string = kafka.require_sasl_ssl()
    env = service_env(
        address,
        KAFKA_TOPIC=topic,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_USERNAME="$ConnectionString",
        KAFKA_SASL_PASSWORD=connection_string,
        KAFKA_SSL_CAFILE=str(ca_file),
        **TEST_SETTINGS,
    )
    if group:
        env["KAFKA_GROUP_ID"] = group
    return {**env, **settings}


class Services(ServiceGroup):
    """The services of one test, against the test broker."""

    def __init__(self, kafka: Cluster) -> None:
        super().__init__(service_env(kafka.bootstrap_servers, **TEST_SETTINGS), cwd=REPO)
        self.kafka = kafka
        #: Values that must never show in a service's output or HTTP answers.
        self.secrets: set[str] = set()
        if kafka.connection_string:
            self.secrets |= {kafka.connection_string, shared_access_key(kafka.connection_string)}

    def leaked(self) -> list[str]:
        """'service: secret' for each secret found in what a service wrote or served."""
        return [
            f"{service.module} (pid {service.pid}): {secret[:6]}..."
            for service in self.started
            for secret in self.secrets
            if secret in service.output() or any(secret in body for body in service.responses)
        ]

    def wait_until(self, check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
        try:
            return super().wait_until(check, timeout, what)
        except TimeoutError as exc:
            raise AssertionError(str(exc)) from None


@pytest.fixture
def services(kafka: Cluster) -> Iterator[Services]:
    """Run producers and consumers as processes; anything left running is killed."""
    running = Services(kafka)
    try:
        yield running
    finally:
        running.kill_all()
    # Every scenario runs with the broker's known key in play somewhere: none may leak.
    assert not running.leaked(), f"a secret reached a log or an endpoint: {running.leaked()}"


def assert_shares_a_group(
    services: Services,
    topic: str,
    ours: ServiceProcess,
    *,
    join: Callable[[], ServiceProcess],
    their_partitions: Callable[[ServiceProcess], list[int]],
    records: int = 40,
) -> ServiceProcess:
    """What every mixed-group test shows, for a 10-partition *topic*.

    Ours owns all 10; the other client joins on its own defaults and the group
    splits them 5/5; kcat's records reach each member in its own partitions
    only; the other leaves (SIGTERM) and ours owns all 10 again. Returns the
    other client, stopped.
    """
    services.wait_until(lambda: len(ours.owned(topic)) == 10, what="ours owns all")
    theirs = join()
    services.wait_until(lambda: len(ours.owned(topic)) == 5, timeout=60, what="a 5/5 split")
    mine = set(ours.owned(topic))
    lines = b"".join(b"k%d:v%d\n" % (i, i) for i in range(records))
    clients.kcat(services.kafka.bootstrap_servers, "-P", "-t", topic, "-K:", stdin=lines)

    def received_by_ours() -> list[int]:
        return [line["partition"] for line in ours.events("message.received")]

    services.wait_until(
        lambda: len(received_by_ours()) + len(their_partitions(theirs)) >= records,
        what=f"{records} records consumed",
    )
    assert set(received_by_ours()) <= mine
    assert set(their_partitions(theirs)).isdisjoint(mine)
    assert received_by_ours(), "ours got none"
    theirs.stop()
    services.wait_until(lambda: len(ours.owned(topic)) == 10, timeout=60, what="all back")
    assert ours.stop() == 0
    return theirs


def topic_seqs(bootstrap_servers: str, topic: str) -> list[int]:
    """Every sequence number stored in *topic*, read from the start to the end."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        reader.assign(partitions)
        reader.seek_to_beginning()
        end = reader.end_offsets(partitions)
        found: list[int] = []
        while any(reader.position(tp) < end[tp] for tp in partitions):
            for records in reader.poll(timeout_ms=1000).values():
                found.extend(message.decode(record.value).seq for record in records)
        return found
    finally:
        reader.close()


def assert_every_send_accounted(
    producer: ServiceProcess, bootstrap_servers: str, topic: str
) -> tuple[list[int], list[int]]:
    """Each number the stopped *producer* used is reported once, as sent or failed,
    and every one reported sent is in *topic*; returns (sent, failed)."""
    sent, failed = seqs(producer, "message.sent"), seqs(producer, "message.failed")
    assert sorted(sent + failed) == list(range(1, len(sent) + len(failed) + 1))
    assert set(sent) <= set(topic_seqs(bootstrap_servers, topic)), "a send reported as sent is lost"
    return sent, failed


def seqs(service: ServiceProcess, event: str) -> list[int]:
    """The sequence numbers in *service*'s *event* log lines, in log order."""
    return service.seqs(event)


def our_metric_names() -> set[str]:
    """Every metric the services export, named as scraped (counters end in _total)."""
    names = set()
    for module in (producer.metrics, consumer.metrics, throttle, tracing_metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase | BatchHistogram):
                for metric in value.describe():
                    names.add(metric.name + ("_total" if metric.type == "counter" else ""))
    return names
