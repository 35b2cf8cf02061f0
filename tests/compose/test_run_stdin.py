"""`docker compose run -T -e PRODUCER_SOURCE=stdin-json producer < events.jsonl` publishes
the file and says in its exit status whether all of it arrived."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.compose.project import COMPOSE, REPO, Project

pytestmark = pytest.mark.compose

RECORDS = 300


def _run_producer(compose: Project, events: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(COMPOSE),
        "--project-name", compose.name,
        "--project-directory", str(REPO),
        "--env-file", str(compose.env_file),
        "run", "--rm", "-T",
        "-e", "PRODUCER_SOURCE=stdin-json",
        "-e", "PRODUCER_RATE=0",
        "producer",
    ]  # fmt: skip
    with events.open("rb") as stdin:
        return subprocess.run(
            command,
            env=compose.env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def test_a_file_piped_into_compose_run_is_published(
    project: Callable[..., Project], tmp_path: Path
) -> None:
    compose = project()
    compose.compose("up", "--detach", "--wait", "kafka", "topic")
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"value": {"order": n}, "key": f"customer-{n % 7}"}) + "\n"
            for n in range(RECORDS)
        )
    )

    result = _run_producer(compose, events)

    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (finished,) = [line for line in lines if line["event"] == "producer.finished"]
    assert (finished["records"], finished["delivered"], finished["source_ended"]) == (
        RECORDS,
        RECORDS,
        True,
    )
    read = compose.kafka_tool(
        "kafka-console-consumer.sh",
        "--topic", "testhub", "--from-beginning",
        "--max-messages", str(RECORDS), "--timeout-ms", "30000",
    )  # fmt: skip
    orders = sorted(json.loads(line)["order"] for line in read.splitlines() if line.startswith("{"))
    assert orders == list(range(RECORDS))

    # A bad line: the rest still goes, and the exit status says not all of it did.
    events.write_text('{"value": 1}\n{"id": 2}\n{"value": 3}\n')
    refused = _run_producer(compose, events)
    assert refused.returncode == 1
    assert '"event": "source.skipped"' in refused.stdout
