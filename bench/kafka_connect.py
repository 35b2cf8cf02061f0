"""Kafka Connect with Debezium's JDBC sink, built once under ``build/`` and run as the peer
of the PostgreSQL sink: a standalone worker writing one topic into a table, keyed like
ours by topic, partition and offset (``primary.key.mode=kafka``).

Its jars come from Maven Central by ``kafka_connect/pom.xml``; a digest of it names the
build, so an edit builds afresh.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import localkafka
from localkafka.jars import java_executable

SOURCES = Path(__file__).parent / "kafka_connect"
BUILD = Path(__file__).resolve().parents[1] / "build" / "kafka-connect"
#: The table it writes.
TABLE = "kafka_connect_records"
#: What a record of the topic it reads holds, as Connect's JsonConverter wants it.
SCHEMA = {
    "type": "struct",
    "optional": False,
    "fields": [
        {"field": "order_id", "type": "int64"},
        {"field": "customer", "type": "string"},
        {"field": "amount", "type": "double"},
    ],
}


def built() -> Path:
    """The directory of its jars, fetched if they are not yet."""
    pom = (SOURCES / "pom.xml").read_bytes()
    home = BUILD / hashlib.sha256(pom).hexdigest()[:12]
    if (home / ".complete").exists():
        return home / "lib"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(SOURCES / "pom.xml", home / "pom.xml")
    result = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy-dependencies", "-DoutputDirectory=lib"],
        cwd=home, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"mvn exited {result.returncode}: {result.stdout[-2000:]}")
    (home / ".complete").touch()
    return home / "lib"


def sink(
    bootstrap: str,
    topic: str,
    postgres_port: int,
    count: Callable[[], int | None],
    *,
    total: int,
    batch_size: int,
) -> float:
    """Rows a second the connector writes from *topic* into :data:`TABLE`, from the first
    row *count* sees to the *total*-th."""
    lib = built()
    with tempfile.TemporaryDirectory(prefix="bench-connect-") as work:
        worker, connector = Path(work) / "worker.properties", Path(work) / "sink.properties"
        worker.write_text(
            f"bootstrap.servers={bootstrap}\n"
            "key.converter=org.apache.kafka.connect.storage.StringConverter\n"
            "value.converter=org.apache.kafka.connect.json.JsonConverter\n"
            "value.converter.schemas.enable=true\n"
            f"offset.storage.file.filename={work}/offsets\n"
            "plugin.discovery=only_scan\n"
            f"listeners=http://127.0.0.1:{localkafka.free_ports(1)[0]}\n"
            # A batch can only be as large as the poll that brings it.
            f"consumer.max.poll.records={batch_size}\n"
            "consumer.auto.offset.reset=earliest\n"
        )
        connector.write_text(
            f"name=jdbc-{uuid.uuid4().hex[:8]}\n"
            "connector.class=io.debezium.connector.jdbc.JdbcSinkConnector\n"
            "tasks.max=1\n"
            f"topics={topic}\n"
            f"connection.url=jdbc:postgresql://127.0.0.1:{postgres_port}/postgres\n"
            "connection.username=postgres\n"
            "connection.password=\n"
            "insert.mode=insert\n"
            "primary.key.mode=kafka\n"
            "schema.evolution=basic\n"
            f"collection.name.format={TABLE}\n"
            f"batch.size={batch_size}\n"
        )
        log = (Path(work) / "connect.log").open("w")
        process = subprocess.Popen(
            [java_executable(), "-Xmx512m", "-cp", f"{lib}/*",
             "org.apache.kafka.connect.cli.ConnectStandalone", str(worker), str(connector)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            return _rate(count, total, process)
        finally:
            process.terminate()
            process.wait(30)
            log.close()


def _rate(count: Callable[[], int | None], total: int, process: subprocess.Popen[bytes]) -> float:
    started_at, started_with = 0.0, 0
    deadline = time.monotonic() + 600
    while (seen := count()) is None or seen < total:
        if process.poll() is not None:
            raise RuntimeError(f"Kafka Connect exited {process.returncode} at {seen} rows")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka Connect: {seen} rows of {total} after 600 s")
        if seen and not started_at:
            started_at, started_with = time.monotonic(), seen
        time.sleep(0.1)
    return (total - started_with) / (time.monotonic() - started_at)
