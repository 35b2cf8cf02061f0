"""The broker the tests run against is a real Apache Kafka, started and stopped on demand."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

import localkafka
import localkafka.broker
from tests.conftest import Cluster

# Starts brokers of its own, without the kafka fixture.
pytestmark = pytest.mark.started


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localkafka", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


def test_plaintext_round_trip(
    kafka: Cluster, new_topic: Callable[..., str], roundtrip: Callable[..., list[bytes]]
) -> None:
    topic = new_topic(partitions=3)
    values = [f"plain-{i}".encode() for i in range(20)]

    received = roundtrip(topic, values, bootstrap_servers=kafka.bootstrap_servers)

    assert sorted(received) == sorted(values)


def test_broker_is_apache_kafka_4_in_kraft_mode(kafka: Cluster) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        quorum = admin.describe_metadata_quorum()
        features = admin.describe_features()
    finally:
        admin.close()
    # Only KRaft has a metadata quorum; a combined node is its own only voter.
    (metadata_partition,) = quorum["topics"][0]["partitions"]
    assert [voter["replica_id"] for voter in metadata_partition["current_voters"]] == [1]
    # The group.version feature (KIP-848) arrived with Kafka 4.0.
    assert features["group.version"]["finalized"][0] >= 1


@pytest.mark.localkafka
def test_cli_starts_and_stops_twice(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "broker")
    first_endpoints = None
    for _ in range(2):
        started = _cli("start", "--data-dir", data_dir)
        assert started.returncode == 0, started.stderr
        info = json.loads(started.stdout)
        assert info["already_running"] is False
        assert set(info) >= {"plaintext", "sasl_ssl", "ca_file", "connection_string", "pid"}
        assert Path(info["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        # A restart on the same directory keeps the addresses clients already hold.
        endpoints = (info["plaintext"], info["sasl_ssl"])
        assert first_endpoints in (None, endpoints)
        first_endpoints = endpoints

        again = _cli("start", "--data-dir", data_dir)
        assert again.returncode == 0
        assert "already running" in again.stderr
        assert json.loads(again.stdout)["pid"] == info["pid"]

        status = _cli("status", "--data-dir", data_dir)
        assert status.returncode == 0
        assert json.loads(status.stdout)["running"] is True

        front = json.loads((Path(data_dir) / "localkafka.json").read_text())["front_pid"]
        assert _running(front), "the Event Hubs front is not running"

        stopped = _cli("stop", "--data-dir", data_dir)
        assert stopped.returncode == 0
        assert json.loads(stopped.stdout)["stopped"] is True
        assert not _running(info["pid"])
        assert not _running(front), "the Event Hubs front outlived its broker"

    status = _cli("status", "--data-dir", data_dir)
    assert status.returncode == 3
    assert json.loads(status.stdout)["running"] is False


def test_cli_shows_and_changes_the_eventhubs_front_rules(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "broker")
    changed = _cli("front", "--data-dir", data_dir, "--drop-api-versions-from", "off",
                   "--tier", "premium")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    rules = json.loads(changed.stdout)
    assert rules["drop_api_versions_from"] is None
    assert rules["tier"] == "premium"
    assert rules["commits_per_second"] == 4  # untouched: Event Hubs' limit
    assert json.loads(_cli("front", "--data-dir", data_dir).stdout) == rules

    wrong = _cli("front", "--data-dir", data_dir, "--tier", "basic")
    assert wrong.returncode == 2
    assert "invalid choice: 'basic'" in wrong.stderr

    (Path(data_dir) / "front.json").write_text('{"tier": "premium", "tiers": 1}')
    broken = _cli("front", "--data-dir", data_dir)
    assert broken.returncode == 1
    assert broken.stderr.count("\n") == 1
    assert "front.json holds no valid rules" in broken.stderr


@pytest.mark.localkafka
def test_start_failure_ends_with_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]

        with pytest.raises(localkafka.LocalKafkaError) as failure:
            localkafka.start(tmp_path, plaintext_port=busy_port, timeout=60)

    assert "exited" in str(failure.value)
    assert "Address already in use" in str(failure.value)
    assert localkafka.status(tmp_path) is None


@pytest.mark.localkafka
def test_cluster_id_starting_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Cluster ids are URL-safe base64: one in 32 starts with "-", which the
    # storage tool once took for an option.
    monkeypatch.setattr(localkafka.broker, "_cluster_id", lambda: "-" + "A" * 21)

    broker = localkafka.start(tmp_path)
    try:
        assert localkafka.status(tmp_path) == broker
    finally:
        localkafka.stop(tmp_path)
