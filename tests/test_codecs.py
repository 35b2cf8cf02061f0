"""Every codec Kafka has works; a missing codec library is one clear line, and nothing lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients import CONSOLE_PRODUCER, java
from tests.conftest import REPO, Services

pytestmark = [pytest.mark.faults, pytest.mark.tools]


def without(tmp_path: Path, package: str) -> str:
    """A PYTHONPATH on which *package* cannot be imported, as in an image built without it."""
    stub = tmp_path / "hidden" / package
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(f"raise ImportError('{package} is hidden by the test')\n")
    return str(stub.parent)


def test_a_batch_the_consumer_cannot_decode_stops_it_and_loses_nothing(
    services: Services, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = services.kafka.bootstrap_servers
    topic = new_topic(partitions=1)
    group = f"g-{topic}"
    java(CONSOLE_PRODUCER, "--bootstrap-server", bootstrap, "--topic", topic, stdin=b"plain 1\n")
    java(
        CONSOLE_PRODUCER,
        "--bootstrap-server", bootstrap,
        "--topic", topic,
        "--compression-codec", "lz4",
        stdin=b"lz4 2\nlz4 3\n",
    )  # fmt: skip

    blind = services.start(
        "consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group, PYTHONPATH=without(tmp_path, "lz4")
    )

    assert blind.process.wait(60) == 1
    blind.stop()
    (failed,) = blind.events("service.failed")
    assert failed["reason"] == "unsupported_codec"
    assert "lz4" in failed["error"]
    assert [line["content"] for line in blind.events("message.received")] == ["plain 1"]
    assert "Traceback" not in blind.output()
    # The batch stays for a consumer that can read it: nothing was skipped.
    able = services.start("consumer", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group)
    services.wait_until(lambda: len(able.events("message.received")) >= 2, what="the lz4 batch")
    assert able.stop() == 0
    assert [line["content"] for line in able.events("message.received")] == ["lz4 2", "lz4 3"]


@pytest.mark.parametrize(("codec", "package"), [("zstd", "zstandard"), ("snappy", "snappy")])
def test_a_producer_codec_without_its_library_is_refused_at_start(
    tmp_path: Path, codec: str, package: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "producer"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": without(tmp_path, package),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            "KAFKA_TOPIC": "t",
            "KAFKA_COMPRESSION_TYPE": codec,
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"KAFKA_COMPRESSION_TYPE={codec} needs the Python package" in result.stderr
    assert "Traceback" not in result.stderr
