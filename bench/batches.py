"""Records per batch in what a producer wrote, read from the broker's log by Kafka's own tool.

Throughput alone does not say why one client sends faster: fuller batches
mean fewer requests for the same records. Counting them in the written log,
not in a client's metrics, measures every contender the same way, Java and
librdkafka included. The broker runs on this machine (localkafka), so the
log directory it reports (DescribeLogDirs) can be read here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kafka import KafkaAdminClient

from localkafka.jars import ensure_jars, java_executable

#: One line per batch in DumpLogSegments' output: "baseOffset: 0 lastOffset: 63 count: 64 ...".
_BATCH = re.compile(r"^baseOffset: \d+ lastOffset: \d+ count: (\d+) ", re.MULTILINE)


def records_per_batch(bootstrap: str, topic: str) -> float:
    """Mean records per batch over every partition of *topic*."""
    segments = sorted(
        str(segment)
        for directory in _partition_dirs(bootstrap, topic)
        for segment in directory.glob("*.log")
    )
    if not segments:
        raise RuntimeError(f"no log segments of {topic} found")
    result = subprocess.run(
        [
            java_executable(),
            "-cp",
            f"{ensure_jars()}/*",
            "kafka.tools.DumpLogSegments",
            "--files",
            ",".join(segments),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    counts = [int(count) for count in _BATCH.findall(result.stdout)]
    if result.returncode != 0 or not counts:
        raise RuntimeError(f"DumpLogSegments found no batches: {result.stderr[-2000:]}")
    return sum(counts) / len(counts)


def _partition_dirs(bootstrap: str, topic: str) -> list[Path]:
    """The directories of *topic*'s partitions, as the broker reports them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        answers = admin.describe_log_dirs([topic])
    finally:
        admin.close()
    return [
        Path(log_dir["log_dir"]) / f"{topic}-{partition['partition_index']}"
        for answer in answers
        for log_dir in answer["log_dirs"]
        for topics in log_dir["topics"]
        if topics["name"] == topic
        for partition in topics["partitions"]
    ]
