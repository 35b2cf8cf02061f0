"""Every secret may come from a file named by its variable with ``_FILE`` after it (a Docker
secret, a Kubernetes Secret mounted as a volume): the services use what the file holds
through the Event Hubs front, and a file that is missing, empty or unreadable, or a value
given both ways, is one line naming the variable, never the content, and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, Services, eventhubs_env, seqs, shared_access_key
from tests.offline import one_line, run

SECRET = "s3cret-in-a-file"


def _file(directory: Path, text: str, name: str = "secret") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _with_the_connection_string_in(path: Path, env: dict[str, str]) -> dict[str, str]:
    """*env* with the connection string moved into *path*, as `echo "$CS" > file` writes it."""
    env = dict(env)
    path.write_text(env.pop("EVENTHUBS_CONNECTION_STRING") + "\n")
    return {**env, "EVENTHUBS_CONNECTION_STRING_FILE": str(path)}


def test_both_services_use_the_connection_string_from_a_file(
    services: Services, new_topic: object, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)  # type: ignore[operator]
    env = _with_the_connection_string_in(
        tmp_path / "connection-string", eventhubs_env(services.kafka, topic, f"g-{topic}")
    )
    consumer = services.start("consumer", clean_env=True, **env)
    producer = services.start("producer", clean_env=True, PRODUCER_RATE="50", **env)

    services.wait_until(lambda: len(seqs(consumer, "message.received")) >= 20, what="20 received")
    assert producer.stop() == 0
    assert consumer.stop() == 0
    for service in (producer, consumer):
        started = service.events("service.started")[0]
        assert started["security_protocol"] == "SASL_SSL"
        assert "EVENTHUBS_CONNECTION_STRING" not in service.process.args  # nowhere but the file


@pytest.mark.faults
def test_a_wrong_key_in_the_file_is_refused_by_the_front(
    services: Services, new_topic: object, tmp_path: Path
) -> None:
    env = eventhubs_env(services.kafka, new_topic(partitions=1), "g")  # type: ignore[operator]
    right = env["EVENTHUBS_CONNECTION_STRING"]
    wrong = right.replace("SharedAccessKey=", "SharedAccessKey=Wr0ng")
    env["EVENTHUBS_CONNECTION_STRING"] = wrong
    consumer = services.start(
        "consumer", clean_env=True, **_with_the_connection_string_in(tmp_path / "cs", env)
    )

    assert consumer.process.wait(60) == 1
    (failure,) = consumer.events("service.failed")
    assert failure["reason"] == "authentication_failed"
    assert shared_access_key(wrong) not in consumer.output()


def _bad_files(directory: Path) -> dict[str, tuple[dict[str, str], str]]:
    """Per case: the variables, and the line that must name the problem."""
    missing, empty = directory / "missing", _file(directory, "\n", "empty")
    given = _file(directory, SECRET, "given")
    return {
        "missing": (
            {"EVENTHUBS_CONNECTION_STRING_FILE": str(missing)},
            f"EVENTHUBS_CONNECTION_STRING_FILE: there is no file {missing}",
        ),
        "empty": (
            {"KAFKA_SASL_PASSWORD_FILE": str(empty)},
            f"KAFKA_SASL_PASSWORD_FILE: {empty} is empty",
        ),
        "a directory": (
            {"KAFKA_SASL_PASSWORD_FILE": str(directory)},
            f"KAFKA_SASL_PASSWORD_FILE: {directory} is a directory, not a file",
        ),
        "both ways": (
            {"EVENTHUBS_CONNECTION_STRING": SECRET, "EVENTHUBS_CONNECTION_STRING_FILE": str(given)},
            "EVENTHUBS_CONNECTION_STRING and EVENTHUBS_CONNECTION_STRING_FILE are both set",
        ),
        "OTLP headers missing": (
            {"OTEL_EXPORTER_OTLP_HEADERS_FILE": str(missing)},
            f"OTEL_EXPORTER_OTLP_HEADERS_FILE: there is no file {missing}",
        ),
    }


CASES = ["missing", "empty", "a directory", "both ways", "OTLP headers missing"]


@pytest.mark.parametrize("module", ["producer", "consumer"])
@pytest.mark.parametrize("case", CASES)
def test_a_bad_secret_file_is_one_line_and_exit_2(module: str, case: str, tmp_path: Path) -> None:
    env, said = _bad_files(tmp_path)[case]
    result = run(module, **env)

    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert result.stdout == ""  # nothing started, nothing connected
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    print(f"{module}, {case}: {result.stderr.strip()}")


def test_an_unreadable_file_is_named_for_a_user_who_cannot_read_it(tmp_path: Path) -> None:
    """As root, the test runs the service as nobody, as the image's user would be refused."""
    path = _file(tmp_path, SECRET)
    path.chmod(0o600)
    tmp_path.chmod(0o755)
    command = [sys.executable, "-m", "producer"]
    if os.getuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(
        command,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "KAFKA_TOPIC": "t",
            "METRICS_PORT": "0",
            "EVENTHUBS_CONNECTION_STRING_FILE": str(path),
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert f"EVENTHUBS_CONNECTION_STRING_FILE: {path} cannot be read (permission denied" in (
        result.stderr
    )
    assert SECRET not in result.stderr
    print(f"unreadable: {result.stderr.strip()}")


def test_the_sinks_database_url_from_a_file(tmp_path: Path) -> None:
    """Read as the connection string is: a bad file is exit 2 before anything connects, and
    a good one is the URL the sink tries (here a closed port, said without the password)."""
    empty = _file(tmp_path, "", "empty")
    result = run(
        "consumer",
        CONSUMER_HANDLER="examples.postgres_sink:handler",
        SINK_DATABASE_URL_FILE=str(empty),
    )
    assert result.returncode == 2
    failed = one_line(result, "service.failed")
    assert failed["reason"] == "handler_settings_invalid"
    assert failed["error"] == f"SINK_DATABASE_URL_FILE: {empty} is empty"

    url = _file(tmp_path, f"postgresql://sink:{SECRET}@127.0.0.1:1/sink\n", "url")
    result = run(
        "consumer",
        CONSUMER_HANDLER="examples.postgres_sink:handler",
        SINK_DATABASE_URL_FILE=str(url),
    )
    assert result.returncode == 1
    failed = one_line(result, "service.failed")
    assert failed["reason"] == "handler_unavailable"
    assert "127.0.0.1" in failed["error"]
    assert "port 1" in failed["error"]
    assert SECRET not in result.stdout + result.stderr


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps each request's headers."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Collector", (_Collector,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_headers_from_a_file_reach_the_collector_and_no_log(
    services: Services,
    new_topic: object,
    tmp_path: Path,
    collector: tuple[str, list[dict[str, str]]],
) -> None:
    endpoint, seen = collector
    headers = _file(tmp_path, f"api-key={SECRET},x-tenant=orders\n")
    producer = services.start(
        "producer",
        KAFKA_TOPIC=new_topic(partitions=1),  # type: ignore[operator]
        PRODUCER_RATE="50",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_HEADERS_FILE=str(headers),
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    services.wait_until(lambda: seen, what="spans exported")
    assert producer.stop() == 0

    assert seen[0].get("api-key") == SECRET
    assert seen[0].get("x-tenant") == "orders"
    assert SECRET not in producer.output()
