"""The Java client's own performance tools, from the kafka-tools jar localkafka resolves.

They are the practical ceiling on this machine: the same broker, the
reference client, no Python. Their settings are translated from our
``producer_args``, so all three contenders send the same way.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localkafka.jars import ensure_jars, java_executable

#: kafka-python argument -> Java property, for every setting that shapes throughput.
_PRODUCER_PROPERTIES = {
    "acks": "acks",
    "enable_idempotence": "enable.idempotence",
    "linger_ms": "linger.ms",
    "batch_size": "batch.size",
    "compression_type": "compression.type",
    "max_in_flight_requests_per_connection": "max.in.flight.requests.per.connection",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "request_timeout_ms": "request.timeout.ms",
}


class JavaToolError(RuntimeError):
    """A Java tool failed or printed nothing we could read."""


def producer_properties(args: Mapping[str, Any]) -> list[str]:
    """``name=value`` pairs for ProducerPerformance from kafka-python producer arguments."""
    props = [f"bootstrap.servers={','.join(args['bootstrap_servers'])}"]
    for python_name, java_name in _PRODUCER_PROPERTIES.items():
        if python_name not in args:
            continue
        value = args[python_name]
        if value is None:
            value = "none"
        elif isinstance(value, bool):
            value = str(value).lower()
        props.append(f"{java_name}={value}")
    return props


def _run(tool: str, arguments: list[str], timeout: float) -> str:
    jars = ensure_jars()
    command = [java_executable(), "-Xmx1g", "-cp", f"{jars}/*", f"org.apache.kafka.tools.{tool}"]
    result = subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise JavaToolError(f"{tool} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def produce(
    args: Mapping[str, Any],
    topic: str,
    count: int,
    *,
    record_size: int | None = None,
    payload_file: Path | None = None,
    timeout: float = 600,
) -> dict[str, float]:
    """Run ProducerPerformance unthrottled; its messages/s over the whole run."""
    payload = (
        ["--payload-file", str(payload_file)]
        if payload_file is not None
        else ["--record-size", str(record_size)]
    )
    out = _run(
        "ProducerPerformance",
        [
            "--topic",
            topic,
            "--num-records",
            str(count),
            "--throughput",
            "-1",
            *payload,
            "--producer-props",
            *producer_properties(args),
        ],
        timeout,
    )
    return parse_producer_output(out)


def parse_producer_output(out: str) -> dict[str, float]:
    """The summary line: ``N records sent, R records/sec (M MB/sec), L ms avg latency, ...``."""
    for line in reversed(out.splitlines()):
        if " records sent, " in line and "records/sec" in line:
            sent, rest = line.split(" records sent, ", 1)
            rate = rest.split(" records/sec", 1)[0]
            latency = rest.split("), ", 1)[1].split(" ms avg latency", 1)[0]
            return {
                "messages": int(sent),
                "messages_per_s": float(rate),
                "avg_latency_ms": float(latency),
            }
    raise JavaToolError(f"ProducerPerformance printed no summary: {out[-500:]}")


def consume(bootstrap: str, topic: str, count: int, group: str, timeout: float = 600) -> float:
    """Run ConsumerPerformance for *count* messages; its messages/s once the group is joined."""
    out = _run(
        "ConsumerPerformance",
        [
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--messages",
            str(count),
            "--group",
            group,
            "--timeout",
            "30000",
        ],
        timeout,
    )
    return parse_consumer_output(out)


def parse_consumer_output(out: str) -> float:
    """``fetch.nMsg.sec`` from the CSV-like summary: the rate after the join, not including it."""
    lines = [line for line in out.splitlines() if line.strip()]
    for header, values in itertools.pairwise(lines):
        if header.startswith("start.time"):
            row = dict(
                zip(
                    (h.strip() for h in header.split(",")),
                    (v.strip() for v in values.split(",")),
                    strict=False,
                )
            )
            try:
                return float(row["fetch.nMsg.sec"])
            except (KeyError, ValueError):
                break
    raise JavaToolError(f"ConsumerPerformance printed no summary: {out[-500:]}")
