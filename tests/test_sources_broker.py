"""A file of JSON lines, bad lines among them, published through ``python -m producer``'s
standard input to the real broker and read back with Kafka's own console consumer; a
stop while the source waits for more accounts for every line read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.clients import console_read
from tests.conftest import REPO, Cluster

#: Lines of the file that no record can be made of, by their line number.
BAD_LINES = {
    3: '{"id": 7, "amount": 12.5}',
    250: "not json {",
    777: '{"value": "x", "key": 42}',
}
RECORDS = 1_000


def _producer(kafka: Cluster, topic: str, source: str, **settings: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "producer"],
        env={
            "PATH": os.environ["PATH"],
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA_TOPIC": topic,
            "PRODUCER_SOURCE": source,
            "PRODUCER_RATE": "0",
            "METRICS_PORT": "0",
            **settings,
        },
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _events(out: str, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


def test_a_file_of_json_lines_is_published_and_each_bad_line_named(
    kafka: Cluster, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    lines, expected = [], []
    for number in range(1, RECORDS + len(BAD_LINES) + 1):
        if number in BAD_LINES:
            lines.append(BAD_LINES[number])
            continue
        n = len(expected)
        lines.append(
            json.dumps({"value": {"n": n}, "key": f"k{n}", "headers": {"line": str(number)}})
        )
        expected.append((f"line:{number}", f"k{n}", json.dumps({"n": n})))
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n")

    producer = _producer(kafka, topic, "stdin-json")
    out, err = producer.communicate(events_file.read_text(), timeout=120)

    # Three lines skipped: exit status 1, though every record was delivered.
    assert producer.returncode == 1, err
    assert "Traceback" not in out + err
    skipped = _events(out, "source.skipped")
    assert [line["where"] for line in skipped] == [f"line {n}" for n in sorted(BAD_LINES)]
    assert "unknown field `id`" in skipped[0]["reason"]
    assert "jq -c '{value: .}'" in skipped[0]["reason"]  # a bare event: how to wrap them
    assert skipped[1]["reason"].startswith("not JSON")
    (failed,) = _events(out, "service.failed")
    assert failed["reason"] == "inputs_skipped"  # every record was delivered
    (finished,) = _events(out, "producer.finished")
    counts = ("records", "delivered", "failed", "unsent", "skipped", "source_ended")
    assert {name: finished[name] for name in counts} == {
        "records": RECORDS,
        "delivered": RECORDS,
        "failed": 0,
        "unsent": 0,
        "skipped": len(BAD_LINES),
        "source_ended": True,
    }
    # Kafka's own consumer reads every record, in the file's order, as the line wrote it.
    assert console_read(kafka.bootstrap_servers, topic, RECORDS) == expected


def test_text_lines_are_published_as_they_are_and_exit_0(
    kafka: Cluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    values = [f"plain line {n} with \t a tab" for n in range(200)]

    producer = _producer(kafka, topic, "stdin-text")
    out, err = producer.communicate("\n".join(values) + "\n", timeout=120)

    assert producer.returncode == 0, err
    (finished,) = _events(out, "producer.finished")
    assert (finished["records"], finished["delivered"]) == (200, 200)
    assert [value for _, _, value in console_read(kafka.bootstrap_servers, topic, 200)] == values


def test_a_stop_while_the_source_waits_accounts_for_every_line_read(
    kafka: Cluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    producer = _producer(kafka, topic, "stdin-text", LOG_MESSAGE_EVERY="1")
    assert producer.stdin is not None
    assert producer.stdout is not None
    producer.stdin.write("".join(f"line {n}\n" for n in range(50)))
    producer.stdin.flush()
    # The pipe stays open: the source waits for more. Stop once the 50th is delivered.
    for raw in producer.stdout:
        line = json.loads(raw)
        if line["event"] == "message.sent" and line["seq"] == 50:
            break
    producer.send_signal(signal.SIGTERM)
    producer.wait(timeout=30)  # stdin still open: communicate() would close it, an end
    out = producer.stdout.read()
    producer.stdin.close()

    (finished,) = _events(out, "producer.finished")
    assert finished["source_ended"] is False
    assert (finished["records"], finished["delivered"], finished["unsent"]) == (50, 50, 0)
    assert producer.returncode == 0  # everything read was delivered
    assert len(console_read(kafka.bootstrap_servers, topic, 50)) == 50
